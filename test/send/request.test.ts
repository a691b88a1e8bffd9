import { describe, expect, it } from "vitest";
import { buildCaptionRequest, encodeCaptionRequest } from "../../src/send/request.js";

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
