import { describe, expect, it } from "vitest";
import { checkSetting } from "../../src/settings/check.js";
import { redactSecret, urlCredentials, withoutPassword } from "../../src/util/redact.js";

const KEY = "sk-Abc123XyZ";

describe("redactSecret", () => {
  it("masks every occurrence of the key, in any letter case", () => {
    const out = redactSecret(
      `Bearer ${KEY} rejected; key ${KEY.toLowerCase()} / ${KEY.toUpperCase()}`,
      KEY,
    );
    expect(out.toLowerCase()).not.toContain(KEY.toLowerCase());
    expect(out).toBe("Bearer [redacted] rejected; key [redacted] / [redacted]");
  });

  it("masks the URL-encoded form of a key", () => {
    const key = "a/b+c=d?e";
    const out = redactSecret(`GET /v1?key=${encodeURIComponent(key)} and raw ${key}`, key);
    expect(out).not.toContain(encodeURIComponent(key));
    expect(out).not.toContain(key);
    expect(out).toBe("GET /v1?key=[redacted] and raw [redacted]");
  });

  it("treats regex characters in the key literally", () => {
    expect(redactSecret("aXbbc then a.b*c", "a.b*c")).toBe("aXbbc then [redacted]");
  });

  it("leaves text alone for a missing or very short key", () => {
    expect(redactSecret("the abc key", "abc")).toBe("the abc key");
    expect(redactSecret("the abc key", undefined)).toBe("the abc key");
    expect(redactSecret("the abc key", "")).toBe("the abc key");
  });

  it("masks a list of keys, the longest first so a key holding another goes whole", () => {
    const out = redactSecret("long abcdefgh short abcd", ["abcd", undefined, "abcdefgh"]);
    expect(out).toBe("long [redacted] short [redacted]");
  });
});

describe("urlCredentials", () => {
  it("finds the password as written, decoded and as Basic auth sends it", () => {
    const creds = urlCredentials("https://user:s3cr%2Ft@api.example.com/v1");
    expect(creds).toContain("s3cr%2Ft");
    expect(creds).toContain("s3cr/t");
    expect(creds).toContain(Buffer.from("user:s3cr/t").toString("base64"));
    expect(new Set(creds).size).toBe(creds.length);
  });

  it("lets redactSecret hide the credential in a message naming the URL", () => {
    const url = "https://user:s3cr%2Ft@api.example.com/v1";
    const basic = Buffer.from("user:s3cr/t").toString("base64");
    const out = redactSecret(
      `POST ${url} failed; Authorization: Basic ${basic}; pw s3cr/t`,
      urlCredentials(url),
    );
    expect(out).not.toContain("s3cr");
    expect(out).not.toContain(basic);
    expect(out).toContain("api.example.com");
  });

  it("takes a long user name alone for a token, a short one not", () => {
    const creds = urlCredentials("https://tok_0123456789@host.example/");
    expect(creds).toEqual(
      expect.arrayContaining([
        "tok_0123456789",
        Buffer.from("tok_0123456789:").toString("base64"),
        Buffer.from("tok_0123456789").toString("base64"),
      ]),
    );
    expect(urlCredentials("https://bob@host.example/")).toEqual([]);
  });

  it("is empty for a URL without credentials or not a URL", () => {
    expect(urlCredentials("https://api.example.com/v1")).toEqual([]);
    expect(urlCredentials("not a url")).toEqual([]);
  });
});

describe("withoutPassword", () => {
  it("masks a URL's password, parsed or not, and leaves the rest as written", () => {
    expect(withoutPassword("redis://:hunter2@queue-host:6379")).toBe(
      "redis://:***@queue-host:6379",
    );
    expect(withoutPassword("redis://127.0.0.1:6379")).toBe("redis://127.0.0.1:6379");
    // One slash short: no host to parse, the password still in the text.
    expect(withoutPassword("redis:/u:hunter2@h")).not.toContain("hunter2");
    expect(withoutPassword("http//u:hunter2@h")).not.toContain("hunter2");
  });

  it("lets no Redis URL without a host through, nor its password into the message", () => {
    const problem = checkSetting("redis", "redis:/u:hunter2@h");
    expect(problem).toMatch(/expected a redis:\/\/ or rediss:\/\/ URL/);
    expect(problem).not.toContain("hunter2");
    expect(checkSetting("redis", "redis://:hunter2@queue-host:6379")).toBeNull();
  });
});
