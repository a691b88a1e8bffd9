/**
 * The known name a typo most likely meant: the same letters ignoring case, dashes and
 * underscores, or at most two edits away (a third for long names). Undefined when none is close.
 */
export function closestName(typed: string, known: readonly string[]): string | undefined {
  const plain = normalise(typed);
  let best: { name: string; distance: number } | undefined;
  for (const name of known) {
    const distance = editDistance(normalise(name), plain);
    if (distance < (best?.distance ?? Number.POSITIVE_INFINITY)) best = { name, distance };
  }
  if (!best) return undefined;
  const allowed = plain.length >= 10 ? 3 : 2;
  return best.distance <= allowed ? best.name : undefined;
}

function normalise(name: string): string {
  return name.toLowerCase().replace(/[-_]/g, "");
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i += 1) {
    const current = [i];
    for (let j = 1; j <= b.length; j += 1) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}
