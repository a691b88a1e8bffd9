import { describe, expect, it } from "vitest";
import {
  addToHistogram,
  countFailure,
  countRow,
  emptyReportSummary,
  type Histogram,
  LATENCY_EDGES,
  LENGTH_EDGES,
  type ReportRow,
  reportFailureOf,
  reportRowOf,
  scriptSafeJson,
} from "../../src/report/report-data.js";

function row(overrides: Partial<ReportRow> = {}): ReportRow {
  return {
    path: "a.jpg",
    caption: "a cat",
    width: 64,
    height: 48,
    promptTokens: 10,
    completionTokens: 5,
    latencyMs: 400,
    flags: [],
    copy: false,
    video: null,
    thumb: null,
    ...overrides,
  };
}

describe("histograms", () => {
  it("start empty, with one bin fewer than edges", () => {
    const summary = emptyReportSummary();
    expect(summary.latency.counts).toEqual(Array(LATENCY_EDGES.length - 1).fill(0));
    expect(summary.captionLength.counts).toEqual(Array(LENGTH_EDGES.length - 1).fill(0));
  });

  it("give each summary its own counts", () => {
    const one = emptyReportSummary();
    const two = emptyReportSummary();
    addToHistogram(one.latency, 10);
    expect(two.latency.counts.every((c) => c === 0)).toBe(true);
  });

  it("put a value in the bin [edges[i], edges[i+1]) and values past the last edge in the last bin", () => {
    const h: Histogram = { edges: [0, 10, 20, 30], counts: [0, 0, 0] };
    for (const value of [0, 9.99, 10, 19, 20, 29, 30, 1e9]) addToHistogram(h, value);
    expect(h.counts).toEqual([2, 2, 4]);
  });
});

describe("countRow and countFailure", () => {
  it("add up captions, copies, flags, tokens and failures", () => {
    const s = emptyReportSummary();
    countRow(s, row({ flags: ["repetitive", "short"], promptTokens: 10, completionTokens: 5 }));
    countRow(s, row({ flags: ["short"], promptTokens: null, completionTokens: 7 }));
    countRow(s, row({ copy: true, latencyMs: 2 }));
    countFailure(s, { path: "b.jpg", code: "timeout", message: "" });
    countFailure(s, { path: "c.jpg", code: "timeout", message: "" });
    countFailure(s, { path: "d.jpg", code: "http_500", message: "" });
    expect(s.captioned).toBe(3);
    expect(s.copies).toBe(1);
    expect(s.flaggedRows).toBe(2);
    expect({ ...s.flagged }).toEqual({ repetitive: 1, short: 2 });
    expect(s.promptTokens).toBe(20);
    expect(s.completionTokens).toBe(17);
    expect(s.failed).toBe(3);
    expect({ ...s.failedByCode }).toEqual({ timeout: 2, http_500: 1 });
  });

  it("leave copies and unknown latencies out of the latency chart but not the length chart", () => {
    const s = emptyReportSummary();
    countRow(s, row({ latencyMs: 400 }));
    countRow(s, row({ latencyMs: 5, copy: true }));
    countRow(s, row({ latencyMs: null }));
    const sum = (h: Histogram) => h.counts.reduce((a, b) => a + b, 0);
    expect(sum(s.latency)).toBe(1);
    expect(s.latency.counts[LATENCY_EDGES.indexOf(300)]).toBe(1);
    expect(sum(s.captionLength)).toBe(3);
  });

  it("measure caption length in characters, not UTF-16 units", () => {
    const s = emptyReportSummary();
    countRow(s, row({ caption: "😀".repeat(60) }));
    // 60 characters fall in [50, 100); 120 code units would land in [100, 200).
    expect(s.captionLength.counts[1]).toBe(1);
    expect(s.captionLength.counts[2]).toBe(0);
  });

  it("count codes and flags named like Object's own keys as any other", () => {
    const s = emptyReportSummary();
    countFailure(s, { path: "a", code: "constructor", message: "" });
    countFailure(s, { path: "b", code: "__proto__", message: "" });
    countRow(s, row({ flags: ["toString"] }));
    expect(s.failedByCode.constructor).toBe(1);
    expect(Object.keys(s.failedByCode)).toContain("__proto__");
    expect(s.flagged.toString).toBe(1);
  });
});

describe("reportRowOf", () => {
  it("reads a CSV record of text cells", () => {
    expect(
      reportRowOf({
        path: "x/a.jpg",
        caption: "a dog",
        width: "640",
        height: "",
        prompt_tokens: "12",
        completion_tokens: "abc",
        latency_ms: "350.5",
        flags: " repetitive, short ,,",
        truncated: "true",
        endpoint: "http://127.0.0.1:8000/v1",
        attempts: "1",
      }),
    ).toEqual({
      path: "x/a.jpg",
      caption: "a dog",
      width: 640,
      height: null,
      promptTokens: 12,
      completionTokens: null,
      latencyMs: 350.5,
      flags: ["repetitive", "short", "truncated"],
      copy: false,
      video: null,
    });
  });

  it("reads a JSONL object, a copy, with truncated counted once", () => {
    const out = reportRowOf({
      path: "b.jpg",
      caption: 42,
      width: 10,
      height: "Infinity",
      flags: ["truncated", "", "short"],
      truncated: true,
      endpoint: "",
      attempts: 0,
    });
    expect(out).toMatchObject({
      caption: "42",
      width: 10,
      height: null,
      promptTokens: null,
      flags: ["truncated", "short"],
      copy: true,
    });
  });

  it("takes a row with an endpoint or attempts for no copy", () => {
    expect(reportRowOf({ path: "a", endpoint: "", attempts: 1 })?.copy).toBe(false);
    expect(reportRowOf({ path: "a", endpoint: "e", attempts: 0 })?.copy).toBe(false);
    expect(reportRowOf({ path: "a" })).toMatchObject({ caption: "", flags: [], copy: false });
  });

  it("is null for a record that names no image", () => {
    expect(reportRowOf({})).toBeNull();
    expect(reportRowOf({ path: "" })).toBeNull();
    expect(reportRowOf({ path: 7, caption: "x" })).toBeNull();
  });
});

describe("reportFailureOf", () => {
  it("reads a failure and fills what is missing", () => {
    expect(reportFailureOf({ path: "a.jpg", code: "timeout", message: "took too long" })).toEqual({
      path: "a.jpg",
      code: "timeout",
      message: "took too long",
    });
    expect(reportFailureOf({ path: "a.jpg", code: 5, message: { x: 1 } })).toEqual({
      path: "a.jpg",
      code: "unknown",
      message: "",
    });
  });

  it("is null for a record that names no image", () => {
    expect(reportFailureOf({ code: "timeout" })).toBeNull();
    expect(reportFailureOf({ path: "" })).toBeNull();
    expect(reportFailureOf({ path: null })).toBeNull();
  });
});

describe("scriptSafeJson", () => {
  const hostile = {
    caption: '</script><script>alert(1)</script><!-- x --> & "q" \u2028\u2029',
    nested: ["</SCRIPT>", "<!--"],
  };

  it("holds nothing that can close the script element or open a comment", () => {
    const out = scriptSafeJson(hostile);
    expect(out.toLowerCase()).not.toContain("</script");
    expect(out).not.toContain("<!--");
    expect(out).not.toMatch(/[<>&\u2028\u2029]/);
  });

  it("still parses back to the same value", () => {
    expect(JSON.parse(scriptSafeJson(hostile))).toEqual(hostile);
  });
});
