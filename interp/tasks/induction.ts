// Induction: a trigger token recurs in a stream of random tokens; each time after the first, the
// model should output the token that followed the trigger's previous occurrence ("... T A ... T -> A").
// The sequence itself continues with A, so it is also a consistent next-token-prediction stream.
//
// Vocabulary: 0 = BOS (position 0), 1 = TRIGGER, 2 .. vocabSize-1 = content tokens (drawn uniformly).
// Labels (NO_LABEL = -1 elsewhere):
//   isTrigger   1 at every trigger occurrence
//   copyToken   at scored positions: the token to output (= target)
//   sourcePos   at scored positions: where that token sits (previous trigger + 1)
//   distance    at scored positions: positions back to the previous trigger
import type { Rng } from '../../engine/random.ts';
import { contextBaselines } from './baselines.ts';
import { emptyBatch, requireInt, sortedSample, type Task, type TaskOptions } from './types.ts';

export const BOS = 0;
export const TRIGGER = 1;
const FIRST_CONTENT = 2;

export interface InductionOptions extends TaskOptions {
  /** How many times the trigger occurs per sequence (default 2; occurrences 2.. are scored). */
  occurrences?: number;
  /** Smallest distance between consecutive trigger occurrences (default 2, so a content token follows each). */
  minDistance?: number;
}

function resolve(o: InductionOptions) {
  const { vocabSize, seqLen, occurrences = 2, minDistance = 2 } = o;
  requireInt('induction', 'vocabSize', vocabSize, FIRST_CONTENT + 2);
  requireInt('induction', 'occurrences', occurrences, 2);
  requireInt('induction', 'minDistance', minDistance, 2);
  // Triggers sit in [1, T-2] (each needs its follower) with gaps >= minDistance.
  requireInt('induction', 'seqLen', seqLen, 2 + (occurrences - 1) * minDistance + 1);
  return { vocabSize, seqLen, occurrences, minDistance };
}

export const induction: Task<InductionOptions> = {
  name: 'induction',
  description: 'After the trigger recurs, output the token that followed its previous occurrence.',
  vocabulary(opts) {
    const { vocabSize } = resolve(opts);
    return [
      { name: 'BOS', first: BOS, last: BOS, description: 'beginning of sequence, position 0' },
      { name: 'TRIGGER', first: TRIGGER, last: TRIGGER, description: 'the recurring trigger token' },
      {
        name: 'content',
        first: FIRST_CONTENT,
        last: vocabSize - 1,
        description: 'uniformly random filler; the copied token is one of these',
      },
    ];
  },
  chance(opts) {
    return 1 / (resolve(opts).vocabSize - FIRST_CONTENT);
  },
  baselines(opts) {
    const { vocabSize } = resolve(opts);
    // the solution reads the token after the trigger's previous occurrence; these read the context otherwise
    return contextBaselines('content token', FIRST_CONTENT, vocabSize - 1, {
      recent: 'the content token just before the trigger',
      frequent: 'the content token seen most often so far (ties: uniform among them)',
      seen: 'uniform over the distinct content tokens seen so far',
    });
  },
  generate(opts, rng: Rng, batch: number) {
    const { vocabSize, seqLen: T, occurrences: m, minDistance: g } = resolve(opts);
    requireInt('induction', 'batch', batch, 1);
    const out = emptyBatch(batch, T, ['isTrigger', 'copyToken', 'sourcePos', 'distance']);
    const { inputs, targets, labels } = out;
    for (let b = 0; b < batch; b++) {
      const row = b * T;
      inputs[row] = BOS;
      for (let t = 1; t < T; t++) inputs[row + t] = rng.int(FIRST_CONTENT, vocabSize);
      // Uniform over valid placements: squeeze out the mandatory (g-1) gap after each trigger,
      // draw sorted distinct slots, then put the gaps back.
      const slots = sortedSample(rng, 1, T - 1 - (m - 1) * (g - 1), m);
      const pos = slots.map((s, k) => s + k * (g - 1));
      const copied = inputs[row + pos[0] + 1];
      pos.forEach((p, k) => {
        inputs[row + p] = TRIGGER;
        labels.isTrigger[row + p] = 1;
        if (k === 0) return;
        inputs[row + p + 1] = copied;
        targets[row + p] = copied;
        labels.copyToken[row + p] = copied;
        labels.sourcePos[row + p] = pos[k - 1] + 1;
        labels.distance[row + p] = p - pos[k - 1];
      });
    }
    return out;
  },
};
