import { describe, expect, it } from "vitest";
import { extractCaption } from "../../src/answer/extract.js";
import { EmptyCaptionError, InvalidResponseError } from "../../src/errors.js";

function reply(message: Record<string, unknown>, finishReason: string | null = "stop", extra = {}) {
  return {
    id: "chatcmpl-1",
    object: "chat.completion",
    choices: [
      { index: 0, message: { role: "assistant", ...message }, finish_reason: finishReason },
    ],
    usage: { prompt_tokens: 120, completion_tokens: 30, total_tokens: 150 },
    ...extra,
  };
}

describe("extractCaption", () => {
  it("takes choices[0].message.content, trimmed, with usage", () => {
    const out = extractCaption(reply({ content: "  A red kite over a beach.\n" }));
    expect(out).toMatchObject({
      caption: "A red kite over a beach.",
      truncated: false,
      reasoning: null,
      usage: { promptTokens: 120, completionTokens: 30, reasoningTokens: null },
    });
  });

  it.each([
    ["reasoning field", { content: "A cat.", reasoning: "Let me look. It is a cat." }],
    ["reasoning_content field", { content: "A cat.", reasoning_content: "Hmm, whiskers." }],
    ["inline think block", { content: "<think>Whiskers, so a cat.</think>\n\nA cat." }],
    ["only a closing tag", { content: "The prompt opened the block. Whiskers.</think>\n\nA cat." }],
    ["two think blocks", { content: "<think>one</think> <think>two</think>A cat." }],
  ])("keeps reasoning out of the caption: %s", (_name, message) => {
    const out = extractCaption(reply(message));
    expect(out.caption).toBe("A cat.");
    expect(out.reasoning).toBeTruthy();
    expect(out.caption).not.toMatch(/think|whiskers|Let me/i);
  });

  it("drops a think block left open by a truncated reply", () => {
    const out = extractCaption(reply({ content: "A cat. <think>but wait" }, "length"));
    expect(out.caption).toBe("A cat.");
    expect(out.truncated).toBe(true);
  });

  it("keeps a literal <think> in the middle of a finished reply", () => {
    expect(extractCaption(reply({ content: "A sign reading <think> big." })).caption).toBe(
      "A sign reading <think> big.",
    );
  });

  it("treats a reply that opens <think> and never closes it as having no caption", () => {
    expect(() => extractCaption(reply({ content: "<think>still pondering" }))).toThrow(
      EmptyCaptionError,
    );
  });

  it("reads content given as an array of text parts", () => {
    const out = extractCaption(
      reply({
        content: [
          { type: "text", text: "A dog" },
          { type: "text", text: " on grass." },
        ],
      }),
    );
    expect(out.caption).toBe("A dog on grass.");
  });

  it("records finish_reason length as truncated", () => {
    expect(extractCaption(reply({ content: "A long desc" }, "length")).truncated).toBe(true);
  });

  it("tolerates a missing usage block", () => {
    const body = reply({ content: "x" });
    delete (body as { usage?: unknown }).usage;
    expect(extractCaption(body).usage).toEqual({
      promptTokens: null,
      completionTokens: null,
      reasoningTokens: null,
    });
  });

  it("fails an empty caption", () => {
    expect(() => extractCaption(reply({ content: "   " }))).toThrow(EmptyCaptionError);
    expect(() => extractCaption(reply({ content: null }))).toThrow(EmptyCaptionError);
  });

  it("says when the model ran out of tokens while thinking, and does not ask for a retry", () => {
    let caught: unknown;
    try {
      extractCaption(reply({ content: null, reasoning: "thinking and thinking" }, "length"));
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(EmptyCaptionError);
    expect((caught as EmptyCaptionError).outOfTokens).toBe(true);
    expect((caught as Error).message).toMatch(/raise maxTokens \(/);
  });

  it("names the setting to raise as the caller does (the command line by its flag)", () => {
    const body = reply({ content: null, reasoning: "thinking" }, "length");
    const asFlag = (option: string) => (option === "maxTokens" ? "--max-tokens" : option);
    expect(() => extractCaption(body, asFlag)).toThrow(/raise --max-tokens \(/);
  });

  it.each([
    ["no choices", { choices: [] }],
    ["choices missing", { object: "chat.completion" }],
    ["not an object", "hello"],
    ["null", null],
  ])("rejects a body with %s", (_name, body) => {
    expect(() => extractCaption(body)).toThrow(InvalidResponseError);
  });
});
