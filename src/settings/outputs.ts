import type { HfMetadataFormat } from "../sinks/hf-metadata-sink.js";
import type { SidecarOptions } from "../sinks/sidecar-sink.js";
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
    hfMetadata: hfMetadataFormat(outputs),
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
  return naming ?? "ext";
}

function hfMetadataFormat(outputs: OutputSettings): HfMetadataFormat | undefined {
  const value = outputs.hfMetadata;
  if (value === undefined || value === false) return undefined;
  return value === "csv" ? "csv" : "jsonl";
}

/**
 * `--sidecar [EXT]` and its companions, checked together; undefined when no sidecar is asked.
 * Each value on its own (the extension, the policy) the settings table has checked already.
 */
function sidecarOptions(
  outputs: OutputSettings,
  name: Namer,
  problems: string[],
): SidecarOptions | undefined {
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
  const chosenPolicy = policy ?? "skip";
  if (join !== undefined && chosenPolicy !== "append" && chosenPolicy !== "prepend") {
    problems.push(
      `${name("sidecarJoin")} only applies with ${name("sidecarPolicy")} append or prepend`,
    );
    return undefined;
  }
  return {
    ext: ext === "" || ext === true ? ".txt" : ext,
    policy: chosenPolicy,
    // Unset stays unset: the sink joins with ", ", and the library's own check knows it was not given.
    ...(join === undefined ? {} : { join }),
  };
}
