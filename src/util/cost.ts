/** Two decimals from 1 up; below, two significant digits, never in exponent form (0.0000081). */
export function formatCost(cost: number): string {
  if (cost >= 1 || cost === 0) return cost.toFixed(2);
  return cost.toFixed(Math.min(20, 1 - Math.floor(Math.log10(cost))));
}
