import { DEFAULT_SAMPLE } from "../settings/defaults.js";
import type { CommandRun } from "./command-io.js";
import {
  CAPTION_FLAGS,
  CONFIG_SWITCHES,
  type FlagSpec,
  LOG_SWITCHES,
  settingFlags,
} from "./flags.js";

/** One command of the CLI: its words, its flags, and the module that runs it. */
export interface CommandSpec {
  /** As yargs reads it: "enqueue <inputs..>". */
  usage: string;
  describe: string;
  flags: readonly FlagSpec[];
  positional?: { name: string; describe?: string; array?: boolean };
  /** Flags that cannot be given together. */
  conflicts?: readonly [string, string];
  /** Loaded when the command runs, so `caption --help` does not load BullMQ. */
  load: () => Promise<{ run: CommandRun }>;
}

const INPUTS = {
  name: "inputs",
  array: true,
  describe: "Folders (searched recursively), image files, or glob patterns",
};
const ENDPOINT_FLAGS = [...settingFlags("check"), ...CONFIG_SWITCHES];

/** Every command, in the order --help lists them; the first is the default (a run). */
export const COMMANDS: readonly CommandSpec[] = [
  {
    usage: "$0 <inputs..>",
    describe: "Caption images into OUT",
    flags: CAPTION_FLAGS,
    positional: INPUTS,
    conflicts: ["prompt", "prompt-file"],
    load: () => import("./commands/caption.js"),
  },
  {
    usage: "estimate <inputs..>",
    describe:
      "Caption a random sample into OUT, then forecast the whole run's tokens, time and cost",
    flags: [
      {
        name: "sample",
        number: true,
        describe: "Images to caption as the sample (kept in OUT: the run does not send them again)",
        defaultDescription: String(DEFAULT_SAMPLE),
      },
      { name: "json", boolean: true, describe: "Print the result as JSON" },
      // The sample is sent (that is how it is measured), and its images are new ones.
      ...CAPTION_FLAGS.filter((flag) => flag.name !== "dry-run" && flag.name !== "redo"),
    ],
    positional: INPUTS,
    conflicts: ["prompt", "prompt-file"],
    load: () => import("./commands/estimate.js"),
  },
  {
    usage: "check",
    describe: "Send one text-only request to test the URL, key and model",
    flags: ENDPOINT_FLAGS,
    load: () => import("./commands/check.js"),
  },
  {
    usage: "config [inputs..]",
    describe: "Show each setting of a command line, its value and where it came from",
    flags: CAPTION_FLAGS,
    positional: INPUTS,
    load: () => import("./commands/config.js"),
  },
  {
    usage: "models",
    describe: "List the model ids the endpoint serves, and the short name (-m) of each",
    flags: ENDPOINT_FLAGS,
    load: () => import("./commands/models.js"),
  },
  {
    usage: "enqueue <inputs..>",
    describe: "Many machines: split the images into shards on a BullMQ queue (Redis)",
    flags: [
      ...settingFlags("enqueue"),
      { name: "retry-failed", boolean: true, describe: "Put failed shards back in the queue" },
      ...CONFIG_SWITCHES,
    ],
    positional: INPUTS,
    load: () => import("./commands/enqueue.js"),
  },
  {
    usage: "worker",
    describe: "Many machines: caption the queue's shards, one at a time, until stopped",
    flags: [
      ...settingFlags("worker"),
      {
        name: "until-empty",
        boolean: true,
        describe: "Exit once the queue has nothing left to do",
      },
      ...CONFIG_SWITCHES,
    ],
    load: () => import("./commands/worker.js"),
  },
  {
    usage: "status",
    describe: "Many machines: shards waiting, active, done and failed; images per second",
    flags: [
      ...settingFlags("status"),
      { name: "json", boolean: true, describe: "Print the status once, as JSON" },
      ...CONFIG_SWITCHES,
    ],
    load: () => import("./commands/status.js"),
  },
  {
    usage: "merge <dir>",
    describe: "Many machines: the shards' captions as one OUT, one row per image",
    flags: [
      ...settingFlags("merge"),
      {
        name: "partial",
        boolean: true,
        describe: "Merge the finished shards even though others are not finished",
      },
      ...LOG_SWITCHES,
    ],
    positional: { name: "dir" },
    load: () => import("./commands/merge.js"),
  },
  {
    usage: "report <out>",
    describe: "Write an HTML page showing every image of OUT beside its caption, to review a run",
    flags: [
      {
        name: "output",
        alias: "o",
        basic: true,
        describe: "The page to write",
        defaultDescription: "<OUT stem>.report.html beside OUT",
      },
      { name: "errors", describe: "The run's errors file", defaultDescription: "beside OUT" },
      ...LOG_SWITCHES,
    ],
    positional: { name: "out" },
    load: () => import("./commands/report.js"),
  },
];
