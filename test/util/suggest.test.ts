import { describe, expect, it } from "vitest";
import { closestName } from "../../src/util/suggest.js";

describe("closestName", () => {
  it("matches ignoring case, dashes and underscores", () => {
    expect(closestName("MAX_PIXELS", ["model", "max-pixels"])).toBe("max-pixels");
    expect(closestName("maxpixels", ["max-pixels"])).toBe("max-pixels");
  });

  it("allows up to two edits for a short name", () => {
    expect(closestName("modle", ["prompt", "model"])).toBe("model");
    expect(closestName("promt", ["port", "prompt"])).toBe("prompt");
  });

  it("picks the nearest name, not the first one listed", () => {
    expect(closestName("temperatur", ["tags", "temperature"])).toBe("temperature");
    expect(closestName("modl", ["models", "mode"])).toBe("mode");
  });

  it("refuses three edits on a short name but allows them on a long one", () => {
    expect(closestName("abcxyz", ["abcdef"])).toBeUndefined();
    expect(closestName("concurrxxxy", ["concurrency"])).toBe("concurrency");
    expect(closestName("concxxxxncy", ["concurrency"])).toBeUndefined();
  });

  it("is undefined when nothing is close or nothing is known", () => {
    expect(closestName("zzzz", ["model", "prompt"])).toBeUndefined();
    expect(closestName("model", [])).toBeUndefined();
  });
});
