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

describe("encodeCaptionRequest with a clip", () => {
  const options = { model: "m", prompt: "Describe this clip.", maxTokens: 5 };

  it("sends a clip as one video_url part holding its MP4", () => {
    const data = Buffer.from("an mp4's bytes, of no particular length");
    const body = JSON.parse(
      encodeCaptionRequest({ mime: "video/mp4", data }, options).toString("utf8"),
    );
    expect(body.messages[0].content).toEqual([
      { type: "text", text: "Describe this clip." },
      { type: "video_url", video_url: { url: `data:video/mp4;base64,${data.toString("base64")}` } },
    ]);
  });

  it("sends a clip's frames as image_url parts in their order, the same JSON as buildCaptionRequest", () => {
    const frames = [0, 1, 2, 49_153].map((length, index) =>
      Buffer.from(Array.from({ length }, (_, i) => (i * 7 + index) % 256)),
    );
    const urls = frames.map((frame) => `data:image/jpeg;base64,${frame.toString("base64")}`);
    const bytes = encodeCaptionRequest({ mime: "image/jpeg", data: frames[0], frames }, options);
    expect(bytes.toString("utf8")).toBe(JSON.stringify(buildCaptionRequest(urls, options)));
  });
});
