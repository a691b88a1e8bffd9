/**
 * What the fake endpoint answers when a request asks for structured output or when a test wants
 * the failures small models produce: a valid instance of a JSON Schema, JSON wrapped in prose as a
 * model that was only asked in the prompt writes it, broken JSON, loops and refusals.
 */

/** A value that matches `schema` (the subset of JSON Schema tests use), built deterministically. */
export function instanceOf(schema: unknown, caption: string, name = ""): unknown {
  if (typeof schema !== "object" || schema === null) return caption;
  const s = schema as Record<string, unknown>;
  if (Array.isArray(s.enum)) return s.enum[0];
  if ("const" in s) return s.const;
  const type = Array.isArray(s.type) ? s.type[0] : s.type;
  switch (type) {
    case "object": {
      const properties = (s.properties ?? {}) as Record<string, unknown>;
      return Object.fromEntries(
        Object.entries(properties).map(([key, value]) => [key, instanceOf(value, caption, key)]),
      );
    }
    case "array": {
      const count = Math.max(typeof s.minItems === "number" ? s.minItems : 0, 3);
      const max = typeof s.maxItems === "number" ? s.maxItems : count;
      const words = caption
        .toLowerCase()
        .replace(/[^a-z0-9 ]/g, "")
        .split(/\s+/)
        .filter(Boolean);
      return Array.from({ length: Math.min(count, max) }, (_, i) =>
        s.items && (s.items as Record<string, unknown>).type === "string"
          ? `${words[i % Math.max(1, words.length)] ?? "thing"} ${i + 1}`
          : instanceOf(s.items, caption, name),
      );
    }
    case "integer":
      return typeof s.minimum === "number" ? s.minimum : 1;
    case "number":
      return typeof s.minimum === "number" ? s.minimum : 0.5;
    case "boolean":
      return name.startsWith("has") || name.startsWith("is");
    case "null":
      return null;
    default:
      return ["caption", "description", "text"].includes(name) ? caption : `${name} of ${caption}`;
  }
}

/** The schema our prompt carries after "JSON Schema:", for a server that ignores response_format. */
export function schemaInPrompt(prompt: string | null): unknown {
  if (prompt === null) return undefined;
  const marker = prompt.indexOf("JSON Schema:");
  if (marker === -1) return undefined;
  try {
    return JSON.parse(prompt.slice(marker + "JSON Schema:".length).trim());
  } catch {
    return undefined;
  }
}

/** How a small model answers "reply with JSON" when nothing constrains it. */
export function wrappedInProse(json: string): string {
  return `Sure! Here is the JSON you asked for:\n\n${json}\n\nLet me know if you need anything else.`;
}

/** JSON cut off mid-object, as a reply stopped at max_tokens or a confused model leaves it. */
export function brokenJson(json: string): string {
  return json.slice(0, Math.max(1, Math.floor(json.length / 2)));
}

export const LOOP_REPLY =
  "A cat sitting on a windowsill. A cat sitting on a windowsill. A cat sitting on a windowsill. A cat sitting on a windowsill. A cat sitting on a windowsill.";
export const REFUSAL_REPLY = "I'm sorry, but I can't help with identifying people in images.";
