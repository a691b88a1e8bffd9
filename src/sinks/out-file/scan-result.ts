import { UsageError } from "../../errors.js";

export interface Scan {
  rows: number;
  /** Byte offset just past the last complete record; everything after it is a torn tail. */
  goodEnd: number;
}

export function damaged(path: string, where: string, what: string): UsageError {
  return new UsageError([
    `${path}: ${where} ${what}; it was not written by caption or was edited. Fix or move the file`,
  ]);
}
