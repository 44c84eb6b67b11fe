// What steps 3 and 4 share for their claims over seeds (interp/seeds.ts): the claim fields of a
// task's summary, with the lone seed's own interval where one seed gives no t interval, and a
// figure with one point per seed beside the task mean and its t interval.
import { seedClaimFields, type SeedSummary } from '../interp/seeds.ts';
import type { Spec } from '../interp/report/index.ts';

/**
 * seedClaimFields, except that a summary of one seed (no t interval) takes that seed's own
 * interval over sequences or rows, `lone`, so the claim's interval stays a pair of numbers; such a
 * claim has no p and its test text says it rests on too few seeds.
 */
export function claimFieldsOverSeeds(s: SeedSummary, lone: [number, number]): ReturnType<typeof seedClaimFields> {
  const f = seedClaimFields(s);
  return s.seeds >= 2 ? f : { ...f, interval: lone };
}

/** The test text of a claim without enough seeds: why it has `s.seeds` seeds (e.g. "only 1 seed of induction passed the learning gate"), and that it is not tested. */
export function tooFewSeeds(s: SeedSummary, why: string, claimSeeds: number): string {
  return `${why}; a claim needs ${claimSeeds} (claimSeeds), so it is not tested${s.seeds < 2 ? " and its interval is the seed's own" : ''}`;
}

/** "only 1 seed of induction passed the learning gate" */
export const fewPassed = (seeds: number, task: string) => `only ${seeds} seed${seeds === 1 ? '' : 's'} of ${task} passed the learning gate`;

/** One row of a per-seed figure: a seed's value, or the task mean with its t interval over seeds. */
export interface SeedPoint {
  /** the claim the point belongs to (a row of the figure) */
  category: string;
  /** "<task>-s<seed>" or "mean over k seeds" */
  what: string;
  value: number;
  lo?: number;
  hi?: number;
}

/** The rows of a per-seed figure for one claim: each seed, then the mean with its t interval (when there are two seeds or more). */
export function seedPoints(category: string, s: SeedSummary): SeedPoint[] {
  const rows: SeedPoint[] = s.perSeed.map((v) => ({ category, what: 'seed', value: v.value }));
  if (s.seeds >= 2) rows.push({ category, what: `mean over seeds`, value: s.mean, lo: s.interval[0], hi: s.interval[1] });
  return rows;
}

/** Per claim (a row): each seed's value as a point, the mean over seeds as a second symbol with its t interval; a dashed rule at 0. */
export function seedChart(rows: SeedPoint[], o: { title: string; valueTitle: string; width?: number }): Spec {
  const y = { field: 'category', type: 'nominal', title: null, sort: null, axis: { labelLimit: 360 } };
  const x = { field: 'value', type: 'quantitative', title: o.valueTitle };
  const what = { field: 'what', type: 'nominal', title: null };
  return {
    title: o.title,
    width: o.width ?? 380,
    data: { values: rows },
    layer: [
      { mark: { type: 'rule', color: '#999', strokeDash: [3, 3] }, encoding: { x: { datum: 0, type: 'quantitative' } } },
      {
        transform: [{ filter: "datum.what !== 'seed'" }],
        mark: 'rule',
        encoding: { y, x: { field: 'lo', type: 'quantitative' }, x2: { field: 'hi' }, color: what },
      },
      { mark: { type: 'point', size: 60, filled: true, opacity: 0.8 }, encoding: { y, x, color: what, shape: what } },
    ],
  } as Spec;
}
