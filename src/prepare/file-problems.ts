import { constants } from "node:fs";
import { access, lstat, stat } from "node:fs/promises";
import { ImageError } from "../errors.js";

/**
 * A problem with the file itself rather than its contents, or undefined when the file can be read.
 * Checked before decoding too, because libvips would block forever on a FIFO and reports a
 * directory or an empty file as an "unsupported image format".
 */
export async function findFileProblem(
  absPath: string,
  cause?: unknown,
): Promise<ImageError | undefined> {
  let stats: Awaited<ReturnType<typeof stat>>;
  try {
    stats = await stat(absPath);
  } catch (error) {
    return fileSystemError(absPath, error, cause);
  }
  if (stats.isDirectory()) {
    return new ImageError(
      "not_a_file",
      `the file is a directory, not an image file; rename it or leave it out of the inputs`,
      { cause },
    );
  }
  if (!stats.isFile()) {
    return new ImageError(
      "not_a_file",
      `the file is not a regular file (a pipe, socket or device); only image files can be captioned`,
      { cause },
    );
  }
  if (stats.size === 0) {
    return new ImageError(
      "empty_file",
      `the file is empty (0 bytes), probably an interrupted copy or download; replace it with a complete copy or remove it`,
      { cause },
    );
  }
  try {
    // stat succeeds on files the user may not read, so ask for read access explicitly.
    await access(absPath, constants.R_OK);
  } catch (error) {
    return fileSystemError(absPath, error, cause);
  }
  return undefined;
}

export async function fileSystemError(
  absPath: string,
  error: unknown,
  cause: unknown,
): Promise<ImageError> {
  const code = errnoCode(error);
  const options = { cause: cause ?? error };
  if (code === "ENOENT") {
    const dangling = await lstat(absPath).then(
      (link) => link.isSymbolicLink(),
      () => false,
    );
    const what = dangling
      ? "is a symbolic link whose target does not exist"
      : "no longer exists (moved or deleted after the inputs were listed)";
    return new ImageError(
      "file_missing",
      `the file ${what}; restore it, or rerun to skip it`,
      options,
    );
  }
  if (code === "EACCES" || code === "EPERM") {
    return new ImageError(
      "permission_denied",
      `the file cannot be read: permission denied; give your user read access (e.g. chmod u+r) or leave it out`,
      options,
    );
  }
  if (code === "ENOTDIR") {
    return new ImageError(
      "file_missing",
      `the file does not exist (a folder in its path is a file); check the path`,
      options,
    );
  }
  return new ImageError(
    "file_unreadable",
    `the file cannot be read (${code ?? "unknown error"}); check the file and the disk, then rerun`,
    options,
  );
}

function errnoCode(error: unknown): string | undefined {
  if (typeof error === "object" && error !== null && "code" in error) {
    const { code } = error;
    if (typeof code === "string") return code;
  }
  return undefined;
}
