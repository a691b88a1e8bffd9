import type { FakeEndpoint } from "./types.js";

/** What a fake said its answers cost, summed over every request it answered. */
export function fakeTotals(fake: FakeEndpoint) {
  const usages = fake.requests.flatMap((r) => (r.usage ? [r.usage] : []));
  return {
    answers: usages.length,
    prompt: usages.reduce((sum, u) => sum + u.prompt_tokens, 0),
    completion: usages.reduce((sum, u) => sum + u.completion_tokens, 0),
  };
}
