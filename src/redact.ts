const MASK = "[redacted]";

/**
 * Removes a secret from text that is about to be shown or stored. Servers have been seen echoing
 * the Authorization header or a key-bearing URL back in error messages.
 */
export function redactSecret(text: string, secret: string | undefined): string {
  // A very short "key" would mask ordinary words; such keys are not real credentials anyway.
  if (!secret || secret.length < 4) return text;
  let out = text.split(secret).join(MASK);
  const encoded = encodeURIComponent(secret);
  if (encoded !== secret) out = out.split(encoded).join(MASK);
  return out;
}
