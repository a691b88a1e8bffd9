import { realpath } from "node:fs/promises";
import path from "node:path";
import { ImageError } from "../errors.js";
import type { ImageTask } from "../types.js";
import { describeErrno, errnoOf } from "../util/folders.js";
import { isWithin, readNoFollow } from "./links.js";

/**
 * The most of an existing sidecar `{existing}` puts into a prompt. Far more than any caption or
 * tag list (and than a model's context): past it the file is not a caption, and its image fails
 * rather than send megabytes.
 */
export const EXISTING_LIMIT_BYTES = 1024 * 1024;

/**
 * The text `{existing}` stands for: the image's sidecar `file`, trimmed, or "" when there is none.
 * Only a regular file beside the image, inside the folder input it was found in (by real path),
 * is read: a symlink there could put any file the user can read (a key, a shell profile) into a
 * request to the endpoint. Anything else fails the image alone (an ImageError: nothing is sent for
 * it, the run goes on): `existing_refused` for a link, a pipe or a folder, a file outside the
 * input or one that cannot be read, `existing_too_large` past EXISTING_LIMIT_BYTES.
 */
export async function readExisting(file: string, task: ImageTask): Promise<string> {
  const shown = path.posix.join(path.posix.dirname(task.path), path.basename(file));
  const refuse = (why: string) =>
    new ImageError(
      "existing_refused",
      `${shown} ${why}, so {existing} does not read it; nothing was sent for this image`,
    );
  let read: Awaited<ReturnType<typeof readNoFollow>>;
  try {
    if (task.root && !isWithin(await realpath(path.dirname(file)), task.root)) {
      throw refuse("is outside the folder input the image was found in");
    }
    read = await readNoFollow(file, EXISTING_LIMIT_BYTES);
  } catch (error) {
    if (error instanceof ImageError) throw error;
    const code = errnoOf(error);
    if (code === "ENOENT" || code === "ENOTDIR") return "";
    throw refuse(`cannot be read (${describeErrno(code)})`);
  }
  switch (read.kind) {
    case "missing":
      return "";
    case "text":
      return read.text.trim();
    case "symlink":
      throw refuse(
        "is a symlink, and its target could be any file; replace the link with a copy of the file to use it",
      );
    case "special":
      throw refuse("is not a regular file");
    case "too_large":
      throw new ImageError(
        "existing_too_large",
        `${shown} holds ${read.bytes} bytes, more than the ${EXISTING_LIMIT_BYTES / 1024 / 1024} MiB {existing} puts into a prompt; nothing was sent for this image: shorten the file, or move it away to caption the image without it`,
      );
  }
}
