// Multi-query associative recall (Arora et al. 2023, "Zoology"): a list of key-value pairs, then
// queries that repeat some of the keys; at each queried key the model must output its value.
// Queries are followed by their value as the next input, so the stream is also consistent for
// next-token prediction (as in Zoology's teacher-forced setup).
//
// Layout of one sequence (T = seqLen):
//   [0, 2N)      k_0 v_0 k_1 v_1 ... (N distinct keys, values drawn uniformly with replacement)
//   [2N, T)      NOISE, except numQueries query slots at random even offsets: key at q, its value at q+1
// Vocabulary: 0 = NOISE, keys 1 .. nKeys, values nKeys+1 .. vocabSize-1, nKeys = floor((vocabSize-1)/2).
// Labels (NO_LABEL = -1 elsewhere):
//   kvPair     in the key-value section: the pair index at both the key and the value
//   pairIndex  at scored positions: which pair is queried
//   keyPos     at scored positions: where the queried key sits in the key-value section
//   value      at scored positions: the value to output (= target)
//   distance   at scored positions: positions back to the queried key
import type { Rng } from '../../engine/random.ts';
import { contextBaselines } from './baselines.ts';
import { emptyBatch, requireInt, sortedSample, type Task, type TaskOptions } from './types.ts';

export const NOISE = 0;
const FIRST_KEY = 1;

export interface MqarOptions extends TaskOptions {
  /** N, key-value pairs per sequence (default 8). */
  numPairs?: number;
  /** Queries per sequence (default numPairs), each of a distinct pair. */
  numQueries?: number;
}

function resolve(o: MqarOptions) {
  const { vocabSize, seqLen, numPairs = 8 } = o;
  const numQueries = o.numQueries ?? numPairs;
  requireInt('mqar', 'vocabSize', vocabSize, 5);
  const nKeys = Math.floor((vocabSize - 1) / 2),
    nValues = vocabSize - 1 - nKeys;
  requireInt('mqar', 'numPairs', numPairs, 1, nKeys);
  requireInt('mqar', 'numQueries', numQueries, 1, numPairs);
  requireInt('mqar', 'seqLen', seqLen, 2 * numPairs + 2 * numQueries);
  return { vocabSize, seqLen, numPairs, numQueries, nKeys, nValues, firstValue: FIRST_KEY + nKeys };
}

export const mqar: Task<MqarOptions> = {
  name: 'mqar',
  description: 'Recall the value bound to each queried key earlier in the sequence.',
  vocabulary(opts) {
    const { vocabSize, nKeys, firstValue } = resolve(opts);
    return [
      { name: 'NOISE', first: NOISE, last: NOISE, description: 'filler between queries' },
      { name: 'keys', first: FIRST_KEY, last: FIRST_KEY + nKeys - 1, description: 'distinct within a sequence' },
      { name: 'values', first: firstValue, last: vocabSize - 1, description: 'drawn uniformly with replacement' },
    ];
  },
  chance(opts) {
    return 1 / resolve(opts).nValues;
  },
  baselines(opts) {
    const { vocabSize, firstValue } = resolve(opts);
    return contextBaselines('value', firstValue, vocabSize - 1, {
      recent: 'the last value seen before the query',
      frequent: 'the value seen most often so far (ties: uniform among them)',
      seen: 'uniform over the distinct values seen so far (a value present in context, ignoring the key)',
    });
  },
  generate(opts, rng: Rng, batch: number) {
    const { seqLen: T, numPairs: N, numQueries: Q, nKeys, nValues, firstValue } = resolve(opts);
    requireInt('mqar', 'batch', batch, 1);
    const out = emptyBatch(batch, T, ['kvPair', 'pairIndex', 'keyPos', 'value', 'distance']);
    const { inputs, targets, labels } = out;
    const slots = Math.floor((T - 2 * N) / 2);
    for (let b = 0; b < batch; b++) {
      const row = b * T;
      const keys = rng.sample(nKeys, N).map((k) => k + FIRST_KEY);
      const values = keys.map(() => firstValue + rng.int(0, nValues));
      keys.forEach((k, i) => {
        inputs[row + 2 * i] = k;
        inputs[row + 2 * i + 1] = values[i];
        labels.kvPair[row + 2 * i] = i;
        labels.kvPair[row + 2 * i + 1] = i;
      });
      inputs.fill(NOISE, row + 2 * N, row + T);
      const queried = rng.sample(N, Q);
      sortedSample(rng, 0, slots, Q).forEach((slot, q) => {
        const i = queried[q],
          p = row + 2 * N + 2 * slot;
        inputs[p] = keys[i];
        inputs[p + 1] = values[i];
        targets[p] = values[i];
        labels.pairIndex[p] = i;
        labels.keyPos[p] = 2 * i;
        labels.value[p] = values[i];
        labels.distance[p] = 2 * N + 2 * slot - 2 * i;
      });
    }
    return out;
  },
};
