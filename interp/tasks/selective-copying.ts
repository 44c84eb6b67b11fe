// Selective copying (Gu & Dao 2023, "Mamba", section 3.1): K data tokens scattered at random
// positions among noise tokens in a length-L prefix, then a separator, then K blank positions at
// which the model must output the data tokens in their original order. Solving it needs
// content-dependent (selective) memory: which positions to keep depends on what the token is.
//
// Layout of one sequence (T = seqLen = L + 1 + K):
//   [0, L)          prefix: NOISE everywhere except K data tokens at sorted random positions
//   L               SEPARATOR
//   [L+1, L+1+K)    BLANK inputs; target at L+1+i is the i-th data token
// Vocabulary: 0 = NOISE, 1 = SEPARATOR, 2 = BLANK, 3 .. vocabSize-1 = data tokens.
// Labels (NO_LABEL = -1 elsewhere):
//   dataIndex    in the prefix: i at the i-th data token
//   outputIndex  at output positions: i
//   sourcePos    at output positions: where the i-th data token sits in the prefix
//   copyToken    at output positions: the token to output (= target)
import type { Rng } from '../../engine/random.ts';
import { contextBaselines } from './baselines.ts';
import { emptyBatch, requireInt, sortedSample, type Task, type TaskOptions } from './types.ts';

export const NOISE = 0;
export const SEPARATOR = 1;
export const BLANK = 2;
const FIRST_DATA = 3;

export interface SelectiveCopyingOptions extends TaskOptions {
  /** K, the number of data tokens to copy (default 16, as in the Mamba paper). */
  numTokens?: number;
}

function resolve(o: SelectiveCopyingOptions) {
  const { vocabSize, seqLen, numTokens = 16 } = o;
  requireInt('selectiveCopying', 'vocabSize', vocabSize, FIRST_DATA + 2);
  requireInt('selectiveCopying', 'numTokens', numTokens, 1);
  // The prefix must hold all K data tokens: L = T - 1 - K >= K.
  requireInt('selectiveCopying', 'seqLen', seqLen, 2 * numTokens + 1);
  return { vocabSize, seqLen, numTokens, prefixLen: seqLen - 1 - numTokens };
}

export const selectiveCopying: Task<SelectiveCopyingOptions> = {
  name: 'selective-copying',
  description: 'Copy the data tokens scattered among noise, in order, after the separator.',
  vocabulary(opts) {
    const { vocabSize } = resolve(opts);
    return [
      { name: 'NOISE', first: NOISE, last: NOISE, description: 'filler in the prefix' },
      { name: 'SEPARATOR', first: SEPARATOR, last: SEPARATOR, description: 'ends the prefix' },
      { name: 'BLANK', first: BLANK, last: BLANK, description: 'input at the K output positions' },
      { name: 'data', first: FIRST_DATA, last: vocabSize - 1, description: 'tokens to copy, drawn uniformly with replacement' },
    ];
  },
  chance(opts) {
    return 1 / (resolve(opts).vocabSize - FIRST_DATA);
  },
  baselines(opts) {
    const { vocabSize } = resolve(opts);
    // the same guess at every output position: none of them tracks which data token comes next
    return contextBaselines('data token', FIRST_DATA, vocabSize - 1, {
      recent: 'the last data token of the prefix, at every output position',
      frequent: 'the data token most often in the prefix (ties: uniform among them)',
      seen: 'uniform over the distinct data tokens of the prefix',
    });
  },
  generate(opts, rng: Rng, batch: number) {
    const { vocabSize, seqLen: T, numTokens: K, prefixLen: L } = resolve(opts);
    requireInt('selectiveCopying', 'batch', batch, 1);
    const out = emptyBatch(batch, T, ['dataIndex', 'outputIndex', 'sourcePos', 'copyToken']);
    const { inputs, targets, labels } = out;
    for (let b = 0; b < batch; b++) {
      const row = b * T;
      inputs.fill(NOISE, row, row + L);
      const positions = sortedSample(rng, 0, L, K);
      positions.forEach((p, i) => {
        const token = rng.int(FIRST_DATA, vocabSize);
        inputs[row + p] = token;
        labels.dataIndex[row + p] = i;
        const o = row + L + 1 + i;
        targets[o] = token;
        labels.outputIndex[o] = i;
        labels.sourcePos[o] = p;
        labels.copyToken[o] = token;
      });
      inputs[row + L] = SEPARATOR;
      inputs.fill(BLANK, row + L + 1, row + T);
    }
    return out;
  },
};
