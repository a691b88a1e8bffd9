import { DEFAULT_BASE_URL } from "./defaults.js";

/**
 * The free public key the provider publishes in its API guide "for trying the service", so that a
 * first run against the hosted API needs no sign-up. Copied from the guide's revision of
 * 2026-07-23 (OpenBMB/MiniCPM-V docs/api.md); the guide has rotated it before, so a refusal is
 * reported as the trial key being withdrawn, not as the user's key being wrong.
 */
export const TRIAL_KEY = "sk-live-kmwPsO1yz9kJfbp8c6az72I-BjfZBX-5V5CmI9yTsXw";

export const TRIAL_KEY_NOTICE =
  "no MINICPM_API_KEY set: using the provider's shared trial key for the hosted API (rate-limited, may be withdrawn at any time); set MINICPM_API_KEY to your own key from platform.modelbest.cn";

/** The key to send: the user's own, else the trial key when the endpoint is the hosted default. */
export function keyFor(
  baseUrl: string,
  apiKey: string | undefined,
): { apiKey: string | undefined; trial: boolean } {
  if (apiKey || baseUrl !== DEFAULT_BASE_URL) return { apiKey, trial: false };
  return { apiKey: TRIAL_KEY, trial: true };
}

/** What to say when the hosted API refuses the trial key. */
export function trialKeyRefused(serverMessage: string): string {
  return `the hosted API refused the shared trial key (${serverMessage}); it may have been withdrawn or used up: set MINICPM_API_KEY to your own key (from platform.modelbest.cn)`;
}
