import { closestName } from "../util/suggest.js";
import { checkSetting, checkValue, type LayerValues } from "./check.js";
import { DEFAULT_BASE_URL, normaliseBaseUrl } from "./defaults.js";
import { SETTING_SPECS } from "./table.js";

/** One server of a run; what it leaves out is the run's own setting. */
export interface EndpointOptions {
  baseUrl: string;
  apiKey?: string | undefined;
  model?: string | undefined;
  concurrency?: number | "auto" | undefined;
  rpm?: number | undefined;
  inputPrice?: number | undefined;
  outputPrice?: number | undefined;
}

/**
 * The servers a layer names: undefined for one base URL (or none: the layer leaves it to those
 * below), else the list. A list's problems are reported, and a `$NAME` key read from `env`.
 */
export function endpointsOf(
  layer: LayerValues,
  env: NodeJS.ProcessEnv,
  problems: string[],
): EndpointOptions[] | undefined | null {
  const { baseUrl, endpoints } = layer.values;
  if (Array.isArray(baseUrl)) {
    // `--base-url` given more than once: each is an endpoint with the run's other settings.
    const shown = layer.describe("baseUrl");
    const urls: string[] = [];
    for (const url of baseUrl) {
      const problem = checkValue(url, SETTING_SPECS.baseUrl.kind);
      if (problem) problems.push(`${shown}: ${problem}`);
      else if (urls.includes(normaliseBaseUrl(url as string))) {
        problems.push(`${shown}: ${normaliseBaseUrl(url as string)} is given twice`);
      } else urls.push(normaliseBaseUrl(url as string));
    }
    // The rest of the layer is checked as if one had been given.
    layer.values = { ...layer.values, baseUrl: urls[0] ?? DEFAULT_BASE_URL };
    return urls.length > 1 ? urls.map((url) => ({ baseUrl: url })) : undefined;
  }
  if (endpoints === undefined) return baseUrl === undefined ? null : undefined;
  const where = layer.describe("baseUrl").replace(/: baseUrl$/, "");
  const found = checkEndpoints(endpoints, env);
  for (const problem of found) problems.push(`${where}: ${problem}`);
  if (found.length > 0 || !Array.isArray(endpoints)) return undefined;
  if (baseUrl !== undefined) {
    problems.push(`${where}: baseUrl and endpoints name the servers twice; keep one of them`);
  }
  return (endpoints as Record<string, unknown>[]).map((entry) => {
    const variable = typeof entry.apiKey === "string" ? KEY_VARIABLE.exec(entry.apiKey)?.[1] : null;
    return {
      ...(entry as unknown as EndpointOptions),
      baseUrl: normaliseBaseUrl(entry.baseUrl as string),
      ...(variable ? { apiKey: env[variable] } : {}),
    };
  });
}

/** An endpoint's `apiKey` that names an environment variable: `$NAME` or `${NAME}`. */
const KEY_VARIABLE = /^\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?$/;

/** The keys an entry of `endpoints` may have. */
export const ENDPOINT_KEYS = [
  "baseUrl",
  "apiKey",
  "model",
  "concurrency",
  "rpm",
  "inputPrice",
  "outputPrice",
] as const;

/**
 * What is wrong with a list of endpoints, each problem naming the entry (`endpoints[1].rpm: …`).
 * With `env`, an apiKey of the form `$NAME` must name a variable that is set.
 */
export function checkEndpoints(value: unknown, env?: NodeJS.ProcessEnv): string[] {
  if (!Array.isArray(value) || value.length === 0) {
    return [
      'endpoints: expected a non-empty list like [{ "baseUrl": "http://gpu1:8000/v1" }, …], each with apiKey, model, concurrency, rpm and prices if it needs its own',
    ];
  }
  const problems: string[] = [];
  const seen = new Set<string>();
  value.forEach((entry: unknown, index) => {
    const where = `endpoints[${index}]`;
    if (typeof entry !== "object" || entry === null || Array.isArray(entry)) {
      problems.push(`${where}: expected an object like { "baseUrl": "http://gpu1:8000/v1" }`);
      return;
    }
    const fields = entry as Record<string, unknown>;
    for (const key of Object.keys(fields)) {
      if (!(ENDPOINT_KEYS as readonly string[]).includes(key)) {
        const near = closestName(key, ENDPOINT_KEYS);
        problems.push(
          `${where}: unknown key "${key}"${near ? ` (did you mean "${near}"?)` : ""}; known keys: ${ENDPOINT_KEYS.join(", ")}`,
        );
      }
    }
    if (fields.baseUrl === undefined) problems.push(`${where}.baseUrl: missing`);
    const named = typeof fields.apiKey === "string" ? KEY_VARIABLE.exec(fields.apiKey) : null;
    if (env && named?.[1] && !env[named[1]]) {
      problems.push(
        `${where}.apiKey: names the environment variable ${named[1]}, which is not set`,
      );
    }
    for (const key of ENDPOINT_KEYS) {
      if (fields[key] === undefined) continue;
      const problem = checkSetting(key, fields[key]);
      // Never echo a key back, even a malformed one.
      if (problem) {
        problems.push(
          `${where}.${key}: ${key === "apiKey" ? "expected a non-empty string" : problem}`,
        );
      }
    }
    if (typeof fields.baseUrl === "string") {
      const url = normaliseBaseUrl(fields.baseUrl);
      if (seen.has(url)) problems.push(`${where}.baseUrl: ${url} is listed twice`);
      seen.add(url);
    }
  });
  return problems;
}
