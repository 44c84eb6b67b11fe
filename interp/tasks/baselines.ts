// Simple baselines for the toy tasks: rules that read the context but do not solve the task
// ("copy the most recent content token", "guess a value seen in context"). A trained model's
// accuracy means something only beside the strongest of them, because uniform chance is a weak
// control: it ignores that the answer is always one of the few tokens present in the context.
//
// A baseline names, at each scored position, the tokens it guesses among uniformly; its accuracy
// is the expected accuracy of that guess (hits counted as the fraction of its guesses equal to
// the target), computed exactly rather than sampled, on whatever batches the model is scored on.
import { IGNORE_INDEX, type TaskBatch } from './types.ts';

export interface Baseline {
  name: string;
  description: string;
  /**
   * The tokens guessed (uniformly, one of them) at scored position t of `row` (one sequence's
   * inputs); the rule may read row[0..t] only, as a causal model does.
   */
  guess(row: Int32Array, t: number): number[];
}

export interface BaselineResult {
  name: string;
  description: string;
  /** expected hits / scored positions over all sequences */
  accuracy: number;
  /** per sequence, over its own scored positions (aligned with scoredAccuracyOf's perSequence) */
  perSequence: number[];
}

/** The expected accuracy of a baseline's uniform guess at the scored positions of `batches`. */
export function baselineAccuracy(baseline: Baseline, batches: readonly TaskBatch[]): BaselineResult {
  const perSequence: number[] = [];
  let hits = 0,
    scored = 0;
  for (const batch of batches) {
    const [B, T] = batch.shape;
    for (let b = 0; b < B; b++) {
      const row = batch.inputs.subarray(b * T, (b + 1) * T);
      let h = 0,
        s = 0;
      for (let t = 0; t < T; t++) {
        const target = batch.targets[b * T + t];
        if (target === IGNORE_INDEX) continue;
        const g = baseline.guess(row, t);
        if (!g.length) throw new Error(`baseline ${baseline.name}: no guess at position ${t}`);
        s++;
        h += g.filter((x) => x === target).length / g.length;
      }
      if (s) perSequence.push(h / s);
      hits += h;
      scored += s;
    }
  }
  if (!scored) throw new Error(`baseline ${baseline.name}: the batches have no scored positions`);
  return { name: baseline.name, description: baseline.description, accuracy: hits / scored, perSequence };
}

/** Tokens of row[0..end) for which `keep` holds, last one first. */
function* backwards(row: Int32Array, end: number, keep: (tok: number) => boolean): Generator<number> {
  for (let i = end - 1; i >= 0; i--) if (keep(row[i])) yield row[i];
}

/** The last token of row[0..end) that `keep` accepts (none: every accepted token, as a uniform guess). */
export function mostRecent(row: Int32Array, end: number, keep: (tok: number) => boolean, all: number[]): number[] {
  for (const tok of backwards(row, end, keep)) return [tok];
  return all;
}

/** The most frequent accepted tokens of row[0..end) (ties: all of them). */
export function mostFrequent(row: Int32Array, end: number, keep: (tok: number) => boolean, all: number[]): number[] {
  const counts = new Map<number, number>();
  for (const tok of backwards(row, end, keep)) counts.set(tok, (counts.get(tok) ?? 0) + 1);
  if (!counts.size) return all;
  const top = Math.max(...counts.values());
  return [...counts].filter(([, c]) => c === top).map(([tok]) => tok);
}

/** The distinct accepted tokens of row[0..end). */
export function distinctSeen(row: Int32Array, end: number, keep: (tok: number) => boolean, all: number[]): number[] {
  const seen = new Set(backwards(row, end, keep));
  return seen.size ? [...seen] : all;
}

export function range(first: number, last: number): number[] {
  return Array.from({ length: last - first + 1 }, (_, i) => first + i);
}

/**
 * The three context rules over the tokens first..last (the answer's class, called `noun`), each
 * reading the inputs up to and including the scored position: the most recent, the most frequent
 * (ties: uniform among them) and any distinct one seen (uniform); with none seen yet, uniform over
 * the class. `describe` says what each reads in the task's terms.
 */
export function contextBaselines(
  noun: string,
  first: number,
  last: number,
  describe: { recent: string; frequent: string; seen: string },
): Baseline[] {
  const all = range(first, last);
  const inClass = (tok: number) => tok >= first && tok <= last;
  return [
    { name: `most recent ${noun}`, description: describe.recent, guess: (row, t) => mostRecent(row, t + 1, inClass, all) },
    { name: `most frequent ${noun}`, description: describe.frequent, guess: (row, t) => mostFrequent(row, t + 1, inClass, all) },
    { name: `${noun} seen`, description: describe.seen, guess: (row, t) => distinctSeen(row, t + 1, inClass, all) },
  ];
}
