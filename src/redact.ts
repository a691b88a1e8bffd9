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
  let out = text.split(secret).join(MASK);
  const encoded = encodeURIComponent(secret);
  if (encoded !== secret) out = out.split(encoded).join(MASK);
  return out;
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
  try {
    const decoded = decodeURIComponent(written);
    return decoded === written ? [written] : [written, decoded];
  } catch {
    return [written];
  }
}
