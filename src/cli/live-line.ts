import { formatDuration } from "./units.js";

/**
 * Columns kept free at the end of the live line: the terminal echoes Ctrl-C as "^C" after it, and
 * a line that then wraps leaves its first half on screen where clearing cannot reach it.
 */
const ECHO_MARGIN = 3;

/** The live line, cut to fit a terminal `width` columns wide. */
export function progressLine(
  state: { done: number; todo: number; alreadyDone: number; failed: number; seconds: number },
  width: number,
): string {
  const { done, todo, alreadyDone, failed, seconds } = state;
  const rate = seconds > 0 ? done / seconds : 0;
  const eta = rate > 0 ? formatDuration((todo - done) / rate) : "?";
  const earlier = alreadyDone > 0 ? ` (${alreadyDone + done}/${alreadyDone + todo} in all)` : "";
  const text = `caption: ${done}/${todo} done${earlier}, ${failed} failed, ${rate.toFixed(1)} images/s, ETA ${eta}`;
  return text.slice(0, Math.max(1, width - ECHO_MARGIN));
}
