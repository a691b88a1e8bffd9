import { createHash } from "node:crypto";
import path from "node:path";
import { extractCaption } from "../answer/extract.js";
import { answerOf, firstJsonObject, looksLikeJson, parseWhole } from "../answer/json-answer.js";
import { ApiError, InvalidJsonError, type NameSetting } from "../errors.js";
import {
  type CaptionProtocol,
  encodeCaptionRequest,
  type RequestVariant,
} from "../send/request.js";
import { readExisting } from "../trust/existing.js";
import type { ClipSent, ImageTask, PreparedImage } from "../types.js";
import { sidecarPath } from "../util/sidecar-path.js";
import { type AnswerSchema, responseFormat, schemaInstruction } from "./structured.js";
import type { PlaceholderValues, PromptTemplate } from "./template.js";

export interface ProtocolOptions {
  model: string;
  template: PromptTemplate;
  maxTokens: number;
  temperature: number | undefined;
  /** A structured answer, checked against this schema. */
  answer: AnswerSchema | undefined;
  /** The answer is a list of tags (`--tags`): they are cleaned, and the caption is the list. */
  tags: boolean;
  /** Where `{existing}` is read: the sidecar the run writes, or `.txt`. */
  sidecarExt: string;
  nameSetting: NameSetting;
  /** Told once when the run stops sending response_format. */
  onWarning: (message: string) => void;
  /** Asked of a clip in place of the template: the default prompt's words for a clip. */
  clipPrompt?: string | undefined;
}

/** A retry of a degenerate caption: these push a looping model off its loop. */
const PENALTY = 0.6;
const HOTTER_BY = 0.2;
const SERVER_DEFAULT_TEMPERATURE = 0.7;

/**
 * Requests built from the prompt template for each image, and replies read as a caption or as a
 * structured answer. Structured answers are first asked with response_format; a server that
 * refuses it (400) or ignores it (prose back) moves the whole run, once, to asking in the prompt
 * alone and reading the first JSON object of each reply.
 */
export function captionProtocol(options: ProtocolOptions): CaptionProtocol {
  let formatOff = false;
  const switchOff = (why: string) => {
    if (formatOff) return;
    formatOff = true;
    options.onWarning(
      `${why}; from now on the JSON is asked for in the prompt alone and read from the first JSON object of each reply`,
    );
  };
  const sendsFormat = (variant: RequestVariant) =>
    options.answer !== undefined && !formatOff && !variant.plain;
  /** The requests built with response_format, as long as anyone holds them. */
  const withFormat = new WeakSet<Uint8Array>();

  return {
    async request(image, task, variant, answers) {
      const values = await placeholderValues(options.template, image, task, options.sidecarExt);
      const text =
        image.clip && options.clipPrompt !== undefined
          ? options.clipPrompt
          : options.template.render(values, answers);
      const asked = options.answer ? `${text}\n\n${schemaInstruction(options.answer)}` : text;
      const prompt =
        image.clip?.mode === "frames" ? `${framesPreface(image.clip)}\n\n${asked}` : asked;
      const format =
        options.answer && sendsFormat(variant) ? responseFormat(options.answer) : undefined;
      const body = encodeCaptionRequest(image, {
        model: options.model,
        prompt,
        maxTokens: options.maxTokens,
        temperature: variant.penalize
          ? Math.min(2, (options.temperature ?? SERVER_DEFAULT_TEMPERATURE) + HOTTER_BY)
          : options.temperature,
        frequencyPenalty: variant.penalize ? PENALTY : undefined,
        responseFormat: format,
      });
      if (format !== undefined) withFormat.add(body);
      return body;
    },

    read(body, variant) {
      const extracted = extractCaption(body, options.nameSetting);
      if (!options.answer) return extracted;
      const constrained = sendsFormat(variant);
      let value = parseWhole(extracted.caption);
      if (value === undefined) {
        // Under response_format a server answers JSON and nothing else; prose means it ignored it.
        // JSON that is merely broken (cut off, say) is a bad answer, not a sign of that.
        if (constrained && !looksLikeJson(extracted.caption)) {
          switchOff("the server answered prose to a request with response_format");
        }
        value = firstJsonObject(extracted.caption);
      }
      return answerOf(options.answer, options.tags, extracted, value);
    },

    mayRefuseFormat(error, request) {
      return (
        request !== null &&
        withFormat.has(request) &&
        error instanceof ApiError &&
        error.status === 400 &&
        !(error instanceof InvalidJsonError)
      );
    },

    formatRefused(error) {
      switchOff(
        `the server refused response_format (${error instanceof Error ? error.message : String(error)}) and answered without it`,
      );
    },
  };
}

/** What a model sent a clip's frames as images is told of them: one clip, in order. */
export function framesPreface(clip: ClipSent): string {
  const span = clip.duration === null ? "" : ` of ${formatSeconds(clip.duration)}`;
  if (clip.frames === 1) {
    return `The image below is a frame from the middle of a video clip${span}. Answer about the clip as a whole.`;
  }
  return `The ${clip.frames} images below are frames of one video clip${span}, in the order they are shown, taken evenly across it. Answer about the clip as a whole, not frame by frame.`;
}

function formatSeconds(seconds: number): string {
  return seconds >= 120
    ? `${Math.round(seconds / 60)} minutes`
    : `${Math.round(seconds * 10) / 10} seconds`;
}

async function placeholderValues(
  template: PromptTemplate,
  image: PreparedImage,
  task: ImageTask,
  sidecarExt: string,
): Promise<Partial<PlaceholderValues>> {
  if (template.uses.size === 0) return {};
  // Inside a shard, the image's own name (`000123.jpg`) and the shard's (`00000.tar`) stand in
  // for the file and its folder; a Parquet row is named by its number.
  const member = task.member;
  const file =
    member?.kind === "tar"
      ? path.posix.basename(member.name)
      : member
        ? String(member.row)
        : path.basename(task.absPath);
  const ext = path.extname(file);
  const values: Partial<PlaceholderValues> = {
    path: task.path,
    file,
    stem: path.basename(file, ext),
    ext: ext.replace(/^\./, ""),
    dir: path.posix.dirname(task.path),
    folder: member ? path.basename(task.absPath) : path.basename(path.dirname(task.absPath)),
    width: String(image.original.width),
    height: String(image.original.height),
  };
  if (template.uses.has("existing")) {
    // Only a regular file of the input's, up to 1 MiB; else the image fails (an ImageError).
    // Inside a shard there is no sidecar: the sample's own text is not a file of the folder's.
    values.existing = member ? "" : await readExisting(sidecarPath(task.absPath, sidecarExt), task);
  }
  return values;
}

/** Which prompt made a caption: the template and the schema, so a rerun can tell a change. */
export function promptHash(template: string, answer: AnswerSchema | undefined): string {
  const hash = createHash("sha256").update(template);
  if (answer) hash.update("\u0000").update(JSON.stringify(answer.schema));
  return hash.digest("hex").slice(0, 12);
}
