import { closestName } from "../util/suggest.js";

/**
 * Prompt templates: `{name}` is filled per image, `{{` and `}}` are literal braces. A template is
 * checked once, before anything is sent, so a typo in a placeholder never reaches the server.
 */

/** Every placeholder a prompt may use, with what it becomes, as docs/prompts.md and errors list them. */
export const PLACEHOLDERS = {
  path: "the image's path as written to OUT",
  file: "its file name, with extension",
  stem: "its file name without extension",
  ext: "its extension, without the dot",
  dir: "its folder, relative like path",
  folder: "the name of its own folder (kohya's 10_ohwx person convention)",
  width: "the original's width in pixels",
  height: "the original's height in pixels",
  existing: "the text of its existing sidecar caption, empty when there is none",
} as const;

export type Placeholder = keyof typeof PLACEHOLDERS;

/** Placeholders that are the same for identical bytes: a prompt using only these may share captions. */
export const CONTENT_PLACEHOLDERS: ReadonlySet<Placeholder> = new Set(["width", "height"]);

/** Whether the prompt of two files with the same bytes can differ (it names the file, say). */
export function variesByFile(template: PromptTemplate): boolean {
  return [...template.uses].some((name) => !CONTENT_PLACEHOLDERS.has(name));
}
export type PlaceholderValues = Record<Placeholder, string>;

/** A checked template: literal text and placeholders in order. */
export interface PromptTemplate {
  readonly text: string;
  /** The placeholders it uses, so a run reads an existing sidecar only when one is asked for. */
  readonly uses: ReadonlySet<Placeholder>;
  /**
   * The other prompts' answers it uses (`{answer.tags}`, `{answer.tags.colour}`), by the key
   * `render` takes them under: the prompt's name, or its name and a field.
   */
  readonly answers: ReadonlySet<string>;
  render(values: Partial<PlaceholderValues>, answers?: Readonly<Record<string, string>>): string;
}

type Part = { literal: string } | { name: Placeholder } | { answer: string };

/** `{answer.NAME}` or `{answer.NAME.FIELD}`: another prompt's answer, or a field of it. */
const ANSWER = /^answer\.([A-Za-z][A-Za-z0-9_]*)(\.[A-Za-z0-9_-]+)?$/;

/**
 * Why `text` is not a valid template (every problem, in one sentence each), or the template.
 * `answers`: the names of the prompts whose answers it may use (`--prompts`); none elsewhere.
 */
export function parseTemplate(
  text: string,
  answers?: readonly string[],
): PromptTemplate | { problems: string[] } {
  const parts: Part[] = [];
  const problems: string[] = [];
  let literal = "";
  for (let i = 0; i < text.length; i += 1) {
    const char = text[i];
    const next = text[i + 1];
    if ((char === "{" && next === "{") || (char === "}" && next === "}")) {
      literal += char;
      i += 1;
      continue;
    }
    if (char === "}") {
      problems.push(`a lone "}" at character ${i + 1}; write "}}" for a literal brace`);
      continue;
    }
    if (char !== "{") {
      literal += char;
      continue;
    }
    const close = text.indexOf("}", i + 1);
    if (close === -1) {
      problems.push(`a lone "{" at character ${i + 1}; write "{{" for a literal brace`);
      continue;
    }
    const inner = text.slice(i + 1, close);
    const answer = answers === undefined ? null : ANSWER.exec(inner.trim());
    if (answer) {
      const [, name = ""] = answer;
      if (answers?.includes(name)) {
        if (literal !== "") parts.push({ literal });
        literal = "";
        parts.push({ answer: inner.trim().slice("answer.".length) });
      } else {
        const near = closestName(name, answers ?? []);
        const others =
          answers && answers.length > 0
            ? `the other prompts are ${answers.join(", ")}`
            : "there is no other prompt";
        problems.push(
          `{${inner.trim()}} names no other prompt${near ? ` (did you mean {answer.${near}}?)` : ""}; ${others}`,
        );
      }
      i = close;
      continue;
    }
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(inner.trim())) {
      const shown = inner.length > 30 ? `${inner.slice(0, 27)}...` : inner;
      problems.push(
        `"{${shown}}" at character ${i + 1} is not a placeholder; write "{{" and "}}" for literal braces`,
      );
      i = close;
      continue;
    }
    const name = inner.trim();
    if (!isPlaceholder(name)) {
      const near = closestName(name, Object.keys(PLACEHOLDERS));
      const hint = near ? ` (did you mean {${near}}?)` : "";
      problems.push(
        `unknown placeholder {${name}}${hint}; the placeholders are ${placeholderList()}`,
      );
    } else {
      if (literal !== "") parts.push({ literal });
      literal = "";
      parts.push({ name });
    }
    i = close;
  }
  if (problems.length > 0) return { problems };
  if (literal !== "") parts.push({ literal });
  const uses = new Set(parts.flatMap((part) => ("name" in part ? [part.name] : [])));
  return {
    text,
    uses,
    answers: new Set(parts.flatMap((part) => ("answer" in part ? [part.answer] : []))),
    render: (values, given = {}) =>
      parts
        .map((part) =>
          "name" in part
            ? (values[part.name] ?? "")
            : "answer" in part
              ? (given[part.answer] ?? "")
              : part.literal,
        )
        .join(""),
  };
}

export function placeholderList(): string {
  return Object.keys(PLACEHOLDERS)
    .map((name) => `{${name}}`)
    .join(", ");
}

function isPlaceholder(name: string): name is Placeholder {
  return Object.hasOwn(PLACEHOLDERS, name);
}
