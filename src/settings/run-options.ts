import type { NameSetting } from "../errors.js";
import type { PromptSpec } from "../prompts/prompt-set.js";
import type { SharedSpend } from "../run/budget.js";
import type { FetchLike } from "../send/client.js";
import type { RequestBudget } from "../send/request-budget.js";
import type { HfMetadataFormat } from "../sinks/hf-metadata-sink.js";
import type { SidecarOptions } from "../sinks/sidecar-sink.js";
import type { WebDatasetOutOptions } from "../sinks/webdataset-out.js";
import type { XmpNaming } from "../sinks/xmp-sink.js";
import type { OutputFormat, PrepareOptions, VideoOptions } from "../types.js";
import type { EndpointOptions } from "./endpoints.js";

/** An endpoint with the run's settings filled in, and the name its rows give it. */
export interface ResolvedEndpoint {
  baseUrl: string;
  apiKey: string | undefined;
  model: string;
  concurrency: number | "auto";
  rpm: number | undefined;
  /** Prices per million tokens, the endpoint's own or the run's. */
  inputPrice: number | undefined;
  outputPrice: number | undefined;
  /** `host:port`: the rows' `endpoint` column. */
  label: string;
  /** The option its key came from, for messages: `apiKey`, or `endpoints[i].apiKey`. */
  keyOption: string;
}

/** What `captionImages` takes. Only `inputs` and `output` are required; the rest have defaults. */
export interface RunOptions {
  /** Folders (searched recursively), image files or glob patterns. */
  inputs: readonly string[];
  /** OUT: where captions go, `.csv`, `.jsonl` or `.parquet`. Relative to `cwd`. */
  output: string;
  /** Relative inputs and the paths written to OUT are relative to this folder. @default process.cwd() */
  cwd?: string | undefined;
  /** @default what OUT holds if it exists, else its extension */
  format?: OutputFormat | undefined;
  /** Where this run's failures go. @default "<OUT stem>.errors.jsonl" beside OUT */
  errorsPath?: string | undefined;
  /** Discard OUT and start fresh instead of resuming. @default false */
  overwrite?: boolean | undefined;
  /** Prepare the images and report what would be sent, without sending or writing anything. */
  dryRun?: boolean | undefined;
  /** Refuse to run when an input holds no image at all (a mistyped glob or folder). @default false */
  strict?: boolean | undefined;
  /**
   * Walk symlinks to folders that lead out of a folder input too. Off, such a link is not
   * followed (and counted in a warning): a folder handed over may link anywhere. Loops are never
   * followed either way; a symlink to an image file is always read.
   * @default false
   */
  followSymlinks?: boolean | undefined;
  /** OUT is only the record the other outputs are checked against; it asks for no image. */
  recordOnly?: boolean | undefined;
  /** OUT's rows name images relative to this folder rather than as displayed. */
  recordRoot?: string | undefined;
  /** Also write each caption beside its image, as LoRA trainers read it. */
  sidecar?: SidecarOptions | undefined;
  /** Also write Hugging Face `metadata.jsonl` (or `.csv`) at the root of each folder input. */
  hfMetadata?: HfMetadataFormat | undefined;
  /** Also merge each caption into an XMP sidecar: `<file>.<ext>.xmp` ("ext") or `<stem>.xmp`. */
  xmp?: XmpNaming | undefined;
  /**
   * Write each input shard again into a folder, every member kept and each sample's caption
   * added (`<key>.txt`, a structured answer merged into `<key>.json`).
   */
  webdataset?: WebDatasetOutOptions | undefined;
  /** Put before every caption, in every output: a LoRA trigger word such as "ohwx, ". */
  prefix?: string | undefined;
  /** Put after every caption, in every output. */
  suffix?: string | undefined;
  /** Quote every CSV cell a spreadsheet would run as a formula, paths too (CSV only). @default false */
  csvFormulaGuard?: boolean | undefined;
  /** @default `MINICPM_BASE_URL`, else `OPENAI_BASE_URL`, else "https://api.modelbest.cn/v1" */
  baseUrl?: string | undefined;
  /**
   * Several servers for one run, each with its own limiter; work goes to whichever has a free
   * slot, and one that stops answering is left out while the others go on. Replaces `baseUrl`;
   * `apiKey`, `model`, `concurrency` and `rpm` are the defaults of each.
   */
  endpoints?: readonly EndpointOptions[] | undefined;
  /**
   * Sent as a Bearer token; self-hosted servers often need none.
   * @default `MINICPM_API_KEY`, else `OPENAI_API_KEY` (never sent to the hosted API), else for the
   * hosted API the provider's shared trial key
   */
  apiKey?: string | undefined;
  /**
   * Where `baseUrl` and `apiKey` are looked up when they are left out, as the command line looks
   * them up: `MINICPM_BASE_URL`/`OPENAI_BASE_URL`, `MINICPM_API_KEY`/`OPENAI_API_KEY`.
   * @default process.env
   */
  env?: Readonly<Record<string, string | undefined>> | undefined;
  /**
   * A model id, or a MiniCPM family (`instruct`, `thinking`, `omni`, `v4.5`): asked for by the id
   * each server lists of it.
   * @default "instruct"
   */
  model?: string | undefined;
  /**
   * May hold placeholders filled per image ({stem}, {folder}, {existing}…; see PLACEHOLDERS).
   * @default a one-paragraph description prompt; with `tags`, a tagging prompt
   */
  prompt?: string | undefined;
  /** Ask for a JSON answer matching this schema (a top-level object); its properties are fields. */
  jsonSchema?: Record<string, unknown> | undefined;
  /** Ask for a list of short lowercase tags: a built-in prompt and schema. @default false */
  tags?: boolean | undefined;
  /** Flagged captions (repetition, refusal, truncated) fail instead of being kept. @default false */
  rejectFlagged?: boolean | undefined;
  /** @default 512; 2048 when the model id contains "think" */
  maxTokens?: number | undefined;
  /** @default the server's */
  temperature?: number | undefined;
  /**
   * Requests in flight at once, and so images held in memory at once; "auto" finds the figure
   * that gives the most throughput, by measuring each endpoint.
   * @default "auto", or 8 for the hosted API (`defaultConcurrency`)
   */
  concurrency?: number | "auto" | undefined;
  /** With concurrency "auto", the most in flight at once per endpoint. @default 256 */
  maxConcurrency?: number | undefined;
  /** Requests per minute at most. @default unlimited */
  rpm?: number | undefined;
  /** Price of a million prompt tokens: with it the summary has a `cost`. @default none */
  inputPrice?: number | undefined;
  /** Price of a million completion tokens (reasoning included). @default none */
  outputPrice?: number | undefined;
  /**
   * Stop sending once the next image would likely take the run's tokens (in and out) past this,
   * judged from the mean of an answer so far; what is in flight finishes, and the summary says
   * `budgetReached`. A rerun goes on where it stopped. @default none
   */
  budgetTokens?: number | undefined;
  /** The same for the cost at `inputPrice` and `outputPrice`, which it needs. @default none */
  budgetCost?: number | undefined;
  /**
   * Send again only the images whose rows in OUT carry a flag (`"flagged"`, or some:
   * `"truncated,refusal"`) or were made by another prompt (`"prompt-changed"`); images not in OUT
   * are left for a run without it. Each new row replaces the old one (OUT is rewritten whole at
   * the end), and the outputs beside the image are written again. @default none
   */
  redo?: string | undefined;
  /**
   * Several named prompts asked of each image, one request each (the image prepared once), in the
   * order their answers are used: `{ short: "One sentence.", long: { prompt: "… {answer.short}",
   * max_tokens: 800 } }`. OUT gets a `caption_<name>` column each (JSONL: a `captions` object);
   * `prompt`, `jsonSchema` and `tags` then go inside a prompt. @default none
   */
  prompts?: Record<string, PromptSpec | string> | undefined;
  /** Of `prompts`, the one whose answer is `caption`, the sidecars, XMP and HF text. @default the first */
  captionPrompt?: string | undefined;
  /** Further attempts after the first, for failures that may be transient. @default 5 */
  retries?: number | undefined;
  /** Per-attempt timeout in ms. @default 120000 */
  timeoutMs?: number | undefined;
  /** The most bytes of a reply body read; a larger one fails its image. @default 4 MiB */
  maxReplyBytes?: number | undefined;
  /** @default 1806336 pixels, JPEG */
  prepare?: Partial<PrepareOptions> | undefined;
  /**
   * Video clips: folders and globs pick them up with `include`; each is cut with FFmpeg to at
   * most `side` px on its short side, `fps` frames a second and `seconds` seconds, and sent as one
   * MP4 or, where a server takes no video, as `frames` images.
   * @default { include: false, mode: "auto", side: 448, fps: 1, seconds: 60, sample: "segments", frames: 8, timeoutMs: 120000 }
   */
  video?: Partial<VideoOptions> | undefined;
  /**
   * A request budget an endpoint shares with other processes (`caption worker` keeps one in
   * Redis per endpoint with an rpm). @default none: the limiter alone
   */
  budgetFor?: ((endpoint: ResolvedEndpoint) => RequestBudget | undefined) | undefined;
  /**
   * Spending shared with other processes (`caption worker` keeps a queue's in Redis): the budget
   * is judged on what all of them spent. @default none: this run's alone
   */
  sharedSpend?: SharedSpend | undefined;
  /** Injectable for tests and instrumentation. @default globalThis.fetch */
  fetch?: FetchLike | undefined;
  /**
   * How messages (errors-file rows included) name a setting to change. The command line passes
   * its flags. @default the option's own name
   */
  nameSetting?: NameSetting | undefined;
}
