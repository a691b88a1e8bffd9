import type { HfMetadataFormat } from "../sinks/hf-metadata-sink.js";
import {
  SIDECAR_POLICIES,
  type SidecarOptions,
  type SidecarPolicy,
  sidecarExtProblem,
} from "../sinks/sidecar-sink.js";
import type { XmpNaming } from "../sinks/xmp-sink.js";
import { type OutputSettings, SETTING_SPECS } from "./table.js";

/** Names a setting in a message: its flag, or where a config file or a variable set it. */
export type Namer = (option: string) => string;

/** What a run writes beside the images, once the outputs' settings are checked together. */
export interface DatasetOutputs {
  sidecar: SidecarOptions | undefined;
  hfMetadata: HfMetadataFormat | undefined;
  xmp: XmpNaming | undefined;
}

/**
 * The outputs beside the images, each setting checked against the others (a policy needs a
 * sidecar); every problem goes into `problems`, named where its value lives.
 */
export function checkDatasetOutputs(
  outputs: OutputSettings,
  name: Namer,
  problems: string[],
): DatasetOutputs {
  return {
    sidecar: sidecarOptions(outputs, name, problems),
    hfMetadata: hfMetadataFormat(outputs, name, problems),
    xmp: xmpNaming(outputs, name, problems),
  };
}

function xmpNaming(
  outputs: OutputSettings,
  name: Namer,
  problems: string[],
): XmpNaming | undefined {
  const { xmp, xmpNaming: naming } = outputs;
  if (xmp !== true) {
    if (naming !== undefined) {
      problems.push(`${name("xmpNaming")} needs ${name("xmpOn")}, e.g. --xmp --xmp-naming stem`);
    }
    return undefined;
  }
  if (naming === undefined || naming === "ext") return "ext";
  if (naming === "stem") return "stem";
  problems.push(`${name("xmpNaming")}: expected ext or stem, got ${JSON.stringify(naming)}`);
  return undefined;
}

function hfMetadataFormat(
  outputs: OutputSettings,
  name: Namer,
  problems: string[],
): HfMetadataFormat | undefined {
  const value = outputs.hfMetadata;
  if (value === undefined || value === false) return undefined;
  if (value === true || value === "" || value === "jsonl") return "jsonl";
  if (value === "csv") return "csv";
  problems.push(
    `${name("hfMetadata")}: expected jsonl or csv, got ${JSON.stringify(value)} (put --hf-metadata after the inputs)`,
  );
  return undefined;
}

/** `--sidecar [EXT]` and its companions, checked together; undefined when no sidecar is asked. */
function sidecarOptions(
  outputs: OutputSettings,
  name: Namer,
  problems: string[],
): SidecarOptions | undefined {
  const before = problems.length;
  const { sidecar: ext, sidecarPolicy: policy, sidecarJoin: join } = outputs;
  // `--no-sidecar` (or `"sidecar": false`) reads as false: no sidecar.
  if (ext === undefined || ext === false) {
    for (const [key, value] of [
      ["sidecarPolicy", policy],
      ["sidecarJoin", join],
    ] as const) {
      if (value !== undefined)
        problems.push(
          `${name(key)} needs ${name("sidecar")}, e.g. --sidecar .txt ${SETTING_SPECS[key].flag} …`,
        );
    }
    return undefined;
  }
  const chosenExt = ext === "" || ext === true ? ".txt" : String(ext);
  const extProblem = sidecarExtProblem(chosenExt);
  if (extProblem) {
    problems.push(
      `${name("sidecar")}: ${extProblem}; put --sidecar after the inputs, or give it one (--sidecar .txt)`,
    );
  }
  const chosenPolicy = policy ?? "skip";
  if (!SIDECAR_POLICIES.includes(chosenPolicy as SidecarPolicy)) {
    problems.push(
      `${name("sidecarPolicy")}: expected one of ${SIDECAR_POLICIES.join(", ")}, got ${JSON.stringify(chosenPolicy)}`,
    );
  }
  if (join !== undefined && chosenPolicy !== "append" && chosenPolicy !== "prepend") {
    problems.push(
      `${name("sidecarJoin")} only applies with ${name("sidecarPolicy")} append or prepend`,
    );
  }
  if (problems.length > before) return undefined;
  return {
    ext: chosenExt,
    policy: chosenPolicy as SidecarPolicy,
    join: typeof join === "string" ? join : ", ",
  };
}
