// The one statistics policy of a run. A step states each claim with its raw p-value, the floor of
// its test and its own effect condition (e.g. "interval above the control's") and leaves it
// pending; `correctFamily` then treats every claim of the run with a p-value as one family, and a
// claim is supported only if its effect condition holds AND its run-wide Holm-adjusted p is below
// alpha (Benjamini-Hochberg q shown beside). Correcting within a step, or not at all, lets a run
// with many steps claim far more than its error rate allows, so no step decides "supported" alone.
import type { Claim } from './report/types.ts';
import { benjaminiHochberg, holm } from './stats.ts';

/** Family-wise error rate of the run-wide Holm correction. */
export const ALPHA = 0.05;

/**
 * A floor "can survive" the correction when a claim sitting at it would still have a Holm p ten
 * times below alpha as the smallest of the family: family size x floor <= alpha / FLOOR_MARGIN. Then
 * the data, not the number of permutations, decide whether the claim survives.
 */
export const FLOOR_MARGIN = 10;

/** The policy in one sentence, printed beside every list of claims. */
export const POLICY = `A claim is supported when its effect condition holds and its Holm-adjusted p-value, corrected across every claim of the run with a p-value (step 13's table), is below ${ALPHA}; Benjamini-Hochberg q is shown beside. Pending claims have not been corrected across the run yet.`;

/** What a step sets on a claim it states: its effect condition, met or not, awaiting correction. */
export function pending(effect: boolean, condition: string): Pick<Claim, 'effect' | 'condition' | 'status' | 'supported'> {
  if (typeof effect !== 'boolean') throw new Error(`claim: effect must be a boolean, got ${effect}`);
  if (!condition) throw new Error('claim: condition must name the effect condition');
  return { effect, condition, status: 'pending', supported: false };
}

/**
 * The run-wide correction: Holm and BH over every claim with a p-value, in the given order; a claim
 * is supported when its effect condition holds and its Holm p < alpha. Claims without a p-value are
 * 'untested' and never supported. Returns new claims; `names` label claims in error messages.
 */
export function correctFamily(claims: readonly Claim[], names?: readonly string[], alpha = ALPHA): Claim[] {
  const name = (i: number) => names?.[i] ?? `claim ${i + 1} ("${claims[i].statement}")`;
  const tested: number[] = [];
  claims.forEach((c, i) => {
    if (typeof c.effect !== 'boolean') throw new Error(`${name(i)}: effect is ${c.effect}, not a boolean`);
    // a NaN p reaches report.json as null: an error, not an untested claim (those omit p)
    if (c.p === undefined) return;
    if (!(c.p > 0 && c.p <= 1)) throw new Error(`${name(i)}: p is ${c.p}, not in (0, 1]`);
    if (c.pFloor !== undefined && !(c.pFloor > 0 && c.pFloor <= c.p * (1 + 1e-9)))
      throw new Error(`${name(i)}: pFloor ${c.pFloor} is not in (0, p = ${c.p}]`);
    tested.push(i);
  });
  const ps = tested.map((i) => claims[i].p as number);
  const pHolm = holm(ps),
    qBh = benjaminiHochberg(ps);
  const m = tested.length;
  const out = claims.map((c): Claim => {
    const { pAdjusted: _a, qBh: _q, correction: _c, ...rest } = c;
    return { ...rest, status: 'untested', supported: false };
  });
  tested.forEach((i, k) => {
    out[i] = {
      ...out[i],
      status: 'corrected',
      pAdjusted: pHolm[k],
      qBh: qBh[k],
      correction: `Holm across the run's ${m} claims with a p-value`,
      supported: claims[i].effect && pHolm[k] < alpha,
    };
  });
  return out;
}

/** Whether the claim's p-value sits at the floor of its test (the floor, not the data, set it). */
export function floorBinds(c: Pick<Claim, 'p' | 'pFloor'>): boolean {
  return c.p !== undefined && c.pFloor !== undefined && c.p <= c.pFloor * (1 + 1e-9);
}

/** Whether a floor can survive Holm in a family of `familySize` with the FLOOR_MARGIN to spare. */
export function floorSurvives(floor: number, familySize: number, alpha = ALPHA): boolean {
  return familySize * floor <= alpha / FLOOR_MARGIN;
}

/** "p = 0.0123", or "p <= 1/201 (floor)" where the floor binds. */
export function pText(c: Pick<Claim, 'p' | 'pFloor'>, fmt: (v: number) => string): string {
  if (c.p === undefined) return 'no p-value';
  if (!floorBinds(c)) return `p = ${fmt(c.p)}`;
  const f = c.pFloor as number;
  // 1/(n+1) reads best as a fraction; a product of floors (several seeds) or an asymptotic floor does not
  const asFraction = f > 1e-7 && Math.abs(Math.round(1 / f) * f - 1) < 1e-9;
  return asFraction ? `p <= 1/${Math.round(1 / f)} (floor)` : `p <= ${fmt(f)} (floor)`;
}

/** The verdict a report prints for a claim. */
export function verdict(c: Pick<Claim, 'status' | 'supported'>): string {
  if (c.status === 'pending') return 'Pending (not yet corrected across the run)';
  if (c.status === 'untested') return 'Not supported (no p-value)';
  return c.supported ? 'Supported' : 'Not supported';
}
