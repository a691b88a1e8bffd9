import path from "node:path";
import { CaptionError, type NameSetting, RunAbortedError } from "../errors.js";
import { readOwnedText, TooLargeToReadError, XMP_READ_LIMIT } from "../trust/links.js";
import { formatCap } from "../trust/text.js";
import { describeErrno, errnoOf } from "../util/folders.js";
import {
  BesideImageSink,
  type BesideRecord,
  type FileState,
  type RecordedCaption,
} from "./beside-image-sink.js";
import { writeWhole } from "./write-whole.js";
import { isPacket, mergeDescription, readDescription } from "./xmp.js";

/** `<file>.<ext>.xmp` (digiKam, darktable) or `<stem>.xmp` (Lightroom, Capture One). */
export type XmpNaming = "ext" | "stem";

export function xmpPath(imagePath: string, naming: XmpNaming): string {
  if (naming === "ext") return `${imagePath}.xmp`;
  return path.join(
    path.dirname(imagePath),
    `${path.basename(imagePath, path.extname(imagePath))}.xmp`,
  );
}

/**
 * The caption as `dc:description` in an XMP sidecar, where photo managers search it. An existing
 * sidecar is merged, never replaced (`xmp.ts`), and the image itself is never opened for writing.
 */
export class XmpSink extends BesideImageSink {
  readonly #naming: XmpNaming;

  readonly #nameSetting: NameSetting;
  protected readonly what = "XMP sidecar";

  constructor(
    naming: XmpNaming,
    recorded: RecordedCaption,
    readOnly: boolean,
    nameSetting: NameSetting,
    onWarning?: (message: string) => void,
  ) {
    super(recorded, readOnly, onWarning);
    this.#naming = naming;
    this.#nameSetting = nameSetting;
  }

  protected fileFor(absPath: string): string {
    return xmpPath(absPath, this.#naming);
  }

  protected collision(imagePath: string, owner: string, file: string): CaptionError {
    return new CaptionError(
      "xmp_collision",
      `${imagePath} and ${owner} would share the XMP sidecar ${path.basename(file)}; rename one of them, or set ${this.#nameSetting("xmp")} to ext`,
    );
  }

  protected async inspect(file: string, imagePath: string, present: boolean): Promise<FileState> {
    let text: string | null;
    try {
      text = present ? await readOwnedText(file, XMP_READ_LIMIT) : null;
    } catch (error) {
      if (!(error instanceof TooLargeToReadError)) throw error;
      return new CaptionError(
        "xmp_too_large",
        `${path.basename(file)} beside ${imagePath} holds ${formatCap(error.bytes)}, more than the ${formatCap(error.limit)} an XMP sidecar is read up to; it was left as it was, fix or move it`,
      );
    }
    if (text === null || isPacket(text)) return "free";
    return new CaptionError(
      "xmp_invalid",
      `${path.basename(file)} beside ${imagePath} is not an XMP packet this tool can merge into; fix or move it`,
    );
  }

  /** One with a description, edited since or not, keeps it: only a missing one is restored. */
  protected async holds(file: string): Promise<boolean> {
    const text = await readOwnedText(file, XMP_READ_LIMIT);
    return text !== null && readDescription(text) !== null;
  }

  /** Its description is the caption: the rest of the packet is merged into, never replaced. */
  protected async wrote(file: string, caption: string): Promise<boolean> {
    const text = await readOwnedText(file, XMP_READ_LIMIT);
    return text !== null && readDescription(text) === caption;
  }

  protected async put(file: string, record: BesideRecord): Promise<void> {
    try {
      await writeWhole(
        file,
        mergeDescription(await readOwnedText(file, XMP_READ_LIMIT), record.caption, record.tags),
      );
    } catch (error) {
      throw new RunAbortedError(
        "xmp_not_writable",
        `cannot merge the caption into ${file} (${error instanceof Error && !("code" in error) ? error.message : describeErrno(errnoOf(error))}); it was left as it was, fix or move it and rerun`,
        { cause: error },
      );
    }
  }
}
