// Claims that rest on seeds. A model trained at one seed is one draw of "a model that learned the
// task": sequences of one model are not independent evidence about the task, so a claim of steps
// 3-9 is made once per task, from one value per gate-passing seed. Its interval is Student's t over
// the seeds (the seed is the unit), and its p-value combines the seeds' own tests, each of which is
// valid alone: for rank tests against matched controls the exact distribution of the sum of the
// seeds' ranks (under the null each rank is uniform and the seeds independent), otherwise Fisher's
// method. Both floors are the product of the seeds' floors, so three seeds of 100 controls reach
// about 1e-6 where one reaches 1/101: the data, not the number of controls, decide.
import { mean, std, studentTQuantile } from './stats.ts';

/** One seed's value of a claim, with that seed's own test. */
export interface SeedValue {
  seed: number;
  /** the model's label (e.g. induction-s0) */
  model: string;
  /** the seed's effect (e.g. circuit minus mean control) */
  value: number;
  /** the seed's raw p-value and the floor of its test */
  p?: number;
  pFloor?: number;
  /** a rank test's count of controls at or above the circuit (`ge`) among `n` controls: p = (1 + ge) / (1 + n) */
  rank?: { ge: number; n: number };
}

/** A claim's summary over seeds. */
export interface SeedSummary {
  seeds: number;
  mean: number;
  /** Student's t interval of the mean over seeds (NaN with fewer than 2 seeds, written as [null, null]: noInterval) */
  interval: [number, number];
  level: number;
  /** the combined p-value and its floor (absent when some seed has no p, or with fewer than `minSeeds` seeds) */
  p?: number;
  pFloor?: number;
  /** how the seeds' tests were combined, in words */
  combination: string;
  perSeed: SeedValue[];
  /** whether there are enough seeds for a claim (minSeeds) */
  enough: boolean;
}

/**
 * The interval of fewer than 2 seeds: [NaN, NaN], so that comparisons with it are false, which JSON
 * writes as [null, null] on purpose (toJSON). A NaN elsewhere in a step's JSON is an error
 * (steps/finite.ts); this one says "no interval", as a --model run's single model gives.
 */
export function noInterval(): [number, number] {
  return Object.assign([Number.NaN, Number.NaN] as [number, number], { toJSON: () => [null, null] });
}

/** Student's t interval of the mean of per-seed values (the seed as the unit). */
export function seedInterval(values: readonly number[], level = 0.95): [number, number] {
  if (values.length < 2) return noInterval();
  for (const [i, v] of values.entries()) if (!Number.isFinite(v)) throw new Error(`seedInterval: seed value ${i} is ${v}`);
  const half = (studentTQuantile(1 - (1 - level) / 2, values.length - 1) * std(values)) / Math.sqrt(values.length);
  const m = mean(values);
  return [m - half, m + half];
}

/**
 * The exact p-value of the sum of independent ranks: seed s has rank r_s = 1 + ge_s among n_s + 1
 * (circuit and controls), uniform on 1..n_s+1 under the null; p = P(sum of ranks <= observed sum).
 * One seed gives the rank p-value (1 + ge) / (1 + n). Ties counted as "at or above" keep it
 * conservative. Floor: the product of 1 / (1 + n_s).
 */
export function sumOfRanksP(ranks: readonly { ge: number; n: number }[]): { p: number; pFloor: number } {
  if (!ranks.length) throw new Error('sumOfRanksP: no seeds');
  // dist[k] = P(sum of the ranks so far = k + seeds so far), built by convolution
  let dist = Float64Array.of(1);
  let observed = 0,
    floor = 1;
  for (const [i, { ge, n }] of ranks.entries()) {
    if (!(Number.isInteger(n) && n >= 1)) throw new Error(`sumOfRanksP: seed ${i} has ${n} controls`);
    if (!(Number.isInteger(ge) && ge >= 0 && ge <= n)) throw new Error(`sumOfRanksP: seed ${i} has ${ge} of ${n} controls at or above`);
    observed += ge;
    floor /= n + 1;
    const next = new Float64Array(dist.length + n);
    for (let k = 0; k < dist.length; k++) {
      const w = dist[k] / (n + 1);
      if (w) for (let g = 0; g <= n; g++) next[k + g] += w;
    }
    dist = next;
  }
  let p = 0;
  for (let k = 0; k <= observed; k++) p += dist[k];
  return { p: Math.min(1, Math.max(p, floor)), pFloor: floor };
}

/**
 * Fisher's combination of independent p-values: X = -2 sum ln p_s is chi-square with 2k degrees of
 * freedom under the null (at most that for discrete, conservative p-values), p = P(chi2_2k >= X) =
 * exp(-X/2) sum_{j<k} (X/2)^j / j!. The floor is the combination of the seeds' floors.
 */
export function fisherP(ps: readonly number[], floors?: readonly number[]): { p: number; pFloor?: number } {
  if (!ps.length) throw new Error('fisherP: no p-values');
  const combine = (xs: readonly number[], what: string) => {
    let half = 0;
    for (const [i, p] of xs.entries()) {
      if (!(p > 0 && p <= 1)) throw new Error(`fisherP: ${what} ${i} is ${p}, not in (0, 1]`);
      half -= Math.log(p);
    }
    // P(chi2_2k >= 2 half) = exp(-half) sum_{j<k} half^j / j!, summed in the log domain's order
    let term = 1,
      sum = 1;
    for (let j = 1; j < xs.length; j++) {
      term *= half / j;
      sum += term;
    }
    return Math.min(1, Math.exp(-half) * sum);
  };
  if (floors && floors.length !== ps.length) throw new Error(`fisherP: ${floors.length} floors for ${ps.length} p-values`);
  const p = combine(ps, 'p');
  if (!floors) return { p };
  const pFloor = combine(floors, 'floor');
  return { p: Math.max(p, pFloor), pFloor };
}

/**
 * A claim's value over seeds: mean and t interval of the per-seed values; the combined p (sum of
 * ranks when every seed has a rank test, Fisher otherwise) when every seed has a p-value and there
 * are at least `minSeeds` seeds.
 */
export function acrossSeeds(perSeed: readonly SeedValue[], o: { minSeeds: number; level?: number }): SeedSummary {
  if (!perSeed.length) throw new Error('acrossSeeds: no seeds');
  const level = o.level ?? 0.95;
  const values = perSeed.map((s) => s.value);
  const enough = perSeed.length >= o.minSeeds;
  const base = {
    seeds: perSeed.length,
    mean: mean(values),
    interval: seedInterval(values, level),
    level,
    perSeed: [...perSeed],
    enough,
  };
  if (!enough) return { ...base, combination: `${perSeed.length} seed(s), fewer than the ${o.minSeeds} a claim needs: not tested` };
  if (perSeed.every((s) => s.rank)) {
    const r = sumOfRanksP(perSeed.map((s) => s.rank!));
    return { ...base, ...r, combination: `exact sum-of-ranks test over ${perSeed.length} seeds (each seed's rank among its controls)` };
  }
  if (perSeed.every((s) => s.p !== undefined)) {
    const hasFloors = perSeed.every((s) => s.pFloor !== undefined);
    const r = fisherP(
      perSeed.map((s) => s.p!),
      hasFloors ? perSeed.map((s) => s.pFloor!) : undefined,
    );
    return { ...base, ...r, combination: `Fisher's combination of ${perSeed.length} seeds' p-values` };
  }
  return { ...base, combination: `${perSeed.length} seeds; some seed has no p-value: not tested` };
}

/** "induction-s0 0.283 (p 0.0099), induction-s1 ...": the per-seed values of a summary. */
export function perSeedText(s: SeedSummary, fmt: (v: number) => string): string {
  return s.perSeed.map((v) => `${v.model} ${fmt(v.value)}${v.p !== undefined ? ` (p ${fmt(v.p)})` : ''}`).join(', ');
}

/**
 * The fields a claim over seeds records: mean over seeds with its t interval, the combined p and
 * floor, the per-seed values, and the effect condition (the seeds' t interval lies above
 * `reference`; never met with fewer than two seeds).
 */
export function seedClaimFields(
  s: SeedSummary,
  reference = 0,
): {
  estimate: number;
  interval: [number, number];
  level: number;
  p?: number;
  pFloor?: number;
  perSeed: { seed: number; model: string; value: number; p?: number }[];
  effectHolds: boolean;
  effectCondition: string;
} {
  return {
    estimate: s.mean,
    interval: s.interval,
    level: s.level,
    ...(s.p !== undefined ? { p: s.p } : {}),
    ...(s.pFloor !== undefined ? { pFloor: s.pFloor } : {}),
    perSeed: s.perSeed.map(({ seed, model, value, p }) => ({ seed, model, value, ...(p !== undefined ? { p } : {}) })),
    effectHolds: s.seeds >= 2 && s.interval[0] > reference,
    effectCondition: `the ${Math.round(s.level * 100)}% t interval over seeds lies above ${reference}`,
  };
}
