import { describe, expect, it } from "vitest";
import { EmptyCaptionError, InvalidResponseError } from "../../src/errors.js";
import {
  buildCaptionRequest,
  encodeCaptionRequest,
  extractCaption,
} from "../../src/send/request.js";

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

describe("buildCaptionRequest", () => {
  it("sends one user message with the prompt and the image, and max_tokens", () => {
    const body = buildCaptionRequest("data:image/jpeg;base64,AAAA", {
      model: "m",
      prompt: "Describe.",
      maxTokens: 64,
    });
    expect(body).toEqual({
      model: "m",
      messages: [
        {
          role: "user",
          content: [
            { type: "text", text: "Describe." },
            { type: "image_url", image_url: { url: "data:image/jpeg;base64,AAAA" } },
          ],
        },
      ],
      max_tokens: 64,
    });
  });

  it("sends temperature only when set", () => {
    const body = buildCaptionRequest("x", {
      model: "m",
      prompt: "p",
      maxTokens: 1,
      temperature: 0,
    });
    expect(body).toHaveProperty("temperature", 0);
  });
});

describe("encodeCaptionRequest", () => {
  it("produces exactly the JSON of buildCaptionRequest", () => {
    const options = {
      model: 'm "quoted" ünï',
      prompt: "Describe\nthis 🎉",
      maxTokens: 9,
      temperature: 0.2,
    };
    // Past one slice of the base64 written at a time, and not a multiple of 3: padding at the end only.
    for (const length of [0, 1, 15, 49_152, 49_153, 200_001]) {
      const data = Buffer.from(Array.from({ length }, (_, i) => (i * 131 + 7) % 256));
      const dataUrl = `data:image/jpeg;base64,${data.toString("base64")}`;
      const bytes = encodeCaptionRequest({ mime: "image/jpeg", data }, options);
      expect(bytes.toString("utf8")).toBe(JSON.stringify(buildCaptionRequest(dataUrl, options)));
    }
    // An image a program built with only its data URL, or with bytes in a plain Uint8Array.
    const url = `data:image/jpeg;base64,${Buffer.from("some jpeg bytes").toString("base64")}`;
    const fromUrl = encodeCaptionRequest({ mime: "image/jpeg", dataUrl: url }, options);
    expect(fromUrl.toString("utf8")).toBe(JSON.stringify(buildCaptionRequest(url, options)));
    const plain = new Uint8Array(Buffer.from("some jpeg bytes"));
    const fromArray = encodeCaptionRequest({ mime: "image/jpeg", data: plain }, options);
    expect(fromArray.toString("utf8")).toBe(JSON.stringify(buildCaptionRequest(url, options)));
    const png = encodeCaptionRequest({ mime: "image/png", data: Buffer.from("png") }, options);
    expect(JSON.parse(png.toString("utf8"))).toEqual(
      buildCaptionRequest(
        `data:image/png;base64,${Buffer.from("png").toString("base64")}`,
        options,
      ),
    );
  });
});

describe("extractCaption", () => {
  it("takes choices[0].message.content, trimmed, with usage", () => {
    const out = extractCaption(reply({ content: "  A red kite over a beach.\n" }));
    expect(out).toMatchObject({
      caption: "A red kite over a beach.",
      truncated: false,
      reasoning: null,
      usage: { promptTokens: 120, completionTokens: 30 },
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
    expect(extractCaption(body).usage).toEqual({ promptTokens: null, completionTokens: null });
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
