const MASK = "[redacted]";

/**
 * Removes a secret from text that is about to be shown or stored. Servers have been seen echoing
 * the Authorization header or a key-bearing URL back in error messages.
 */
export function redactSecret(
  text: string,
  secret: string | undefined | readonly (string | undefined)[],
): string {
  if (typeof secret !== "string") {
    // Longest first, so a key that holds another is masked whole.
    const keys = [...(secret ?? [])].sort((a, b) => (b?.length ?? 0) - (a?.length ?? 0));
    return keys.reduce<string>((out, key) => redactSecret(out, key), text);
  }
  // A very short "key" would mask ordinary words; such keys are not real credentials anyway.
  if (secret.length < 4) return text;
  // In any letter case: a server or a step after it (tags are lowercased) may change it.
  let out = text.replace(new RegExp(escapeRegExp(secret), "gi"), MASK);
  const encoded = encodeURIComponent(secret);
  if (encoded !== secret) out = out.replace(new RegExp(escapeRegExp(encoded), "gi"), MASK);
  return out;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/**
 * The credential a base URL carries in its user-info part (`https://user:token@host`), as written
 * and decoded, to be masked like a key: the URL is shown in messages, the credential must not be.
 * A user name alone is taken for a token only when it is long enough to be one.
 */
export function urlCredentials(url: string): string[] {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return [];
  }
  const written = parsed.password || (parsed.username.length >= 8 ? parsed.username : "");
  if (!written) return [];
  let decoded = written;
  try {
    decoded = decodeURIComponent(written);
  } catch {
    // Not percent-encoding: the written form is the credential.
  }
  // The same credential as HTTP Basic auth sends it, which a server may echo back.
  const user = safeDecode(parsed.username);
  const basic = (pair: string) => Buffer.from(pair).toString("base64");
  const sent = parsed.password ? [basic(`${user}:${decoded}`)] : [basic(`${user}:`), basic(user)];
  return [...new Set([written, decoded, ...sent])];
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** A URL as a message may show it: a password in it is not. */
export function withoutPassword(text: string): string {
  try {
    const url = new URL(text);
    if (url.password) {
      url.password = "***";
      return url.toString();
    }
  } catch {
    // Not a URL: masked as text below.
  }
  // A password can still hide where no parser looks for one, after "user:" and before "@".
  return text.replace(/:[^:/@]*@/, ":***@");
}
