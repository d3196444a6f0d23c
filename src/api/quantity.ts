/**
 * Kubernetes resource quantities ("100m", "0.5", "256Mi", "1G", "1e3"), as numbers in base units (cores
 * for cpu, bytes for memory), so a podTemplate's requests can be compared with the admin's ceilings.
 */
const SUFFIX: Record<string, number> = {
  '': 1,
  m: 1e-3,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};
const QUANTITY =
  /^([+]?[0-9]+(?:\.[0-9]*)?|[+]?\.[0-9]+)(?:(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E)|[eE]([+-]?[0-9]+))?$/;

/** The quantity in base units, or undefined when it is not a quantity. */
export function parseQuantity(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value : undefined;
  const match = QUANTITY.exec(value.trim());
  if (!match) return undefined;
  const amount = Number(match[1]);
  if (match[3] !== undefined) return amount * 10 ** Number(match[3]);
  return amount * (SUFFIX[match[2] ?? ''] ?? NaN);
}
