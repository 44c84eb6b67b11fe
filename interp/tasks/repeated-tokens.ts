// Repeated random tokens: the standard induction test for a language model (Olsson et al. 2022;
// TransformerLens' induction test). A run of L tokens drawn uniformly from a content range of the
// vocabulary, then the same L tokens again: from the second copy's first token on, a model that
// copies in context ("... A B ... A -> B") predicts every next token, while the first copy is
// unpredictable (uniform random tokens). A model is never trained on this; it measures whether a
// model trained on something else (text) copies.
//
// Layout of a sequence of length T (b = 1 with a BOS token, else 0; L per sequence, see varyLength):
//   [BOS?] [T - b - 2L lead-in tokens] [x_1 .. x_L] [x_1 .. x_L]
// The lead-in (random content tokens, never repeated) makes the copies end at the last position.
// Scored positions: the second copy's positions i whose next token is also in it (L - 1 of them):
// the target is input[i + 1], a copy of the first copy's token at i + 1 - L. Position i = (start of
// the second copy) - 1 is not scored: its current token x_L has no earlier occurrence to continue.
//
// Options: vocabSize, seqLen; firstToken / lastToken: the content range (default 0 / vocabSize-1; a
// language model's special tokens sit outside it); bos: a BOS token id (-1, the default: none);
// varyLength: 0 (default) every sequence has L = floor((T - b) / 2), 1: L uniform in [ceil(Lmax / 2),
// Lmax] per sequence, so that answers sit at several distances from their source (step 8's source
// test matches each answer's source against other answers' positions at the same distance, which a
// single distance leaves none of); repeat: 1 (default) the second half repeats the first, 0 the
// CONTROL: a fresh random second half at the same positions, scored at the same positions.
// Generated with the same seed, a control batch has exactly the repeat batch's lead-ins, lengths and
// first copies (the fresh halves come from a forked stream), so the two pair by sequence.
//
// Labels (NO_LABEL = -1 elsewhere; a control batch has none: nothing in it repeats):
//   copyToken   at scored positions: the token to output (= target)
//   sourcePos   at scored positions: where that token sits in the first copy (i + 1 - L)
//   distance    at scored positions: L, positions back from the target to its earlier occurrence
//   isRepeat    1 at every position of the second copy (its token already occurred L back)
import type { Rng } from '../../engine/random.ts';
import { contextBaselines } from './baselines.ts';
import { emptyBatch, IGNORE_INDEX, NO_LABEL, requireInt, type Task, type TaskBatch, type TaskOptions, type VocabEntry } from './types.ts';

export interface RepeatedTokensOptions extends TaskOptions {
  firstToken?: number;
  lastToken?: number;
  bos?: number;
  varyLength?: number;
  repeat?: number;
}

export const REPEATED_TOKENS_LABELS = ['copyToken', 'sourcePos', 'distance', 'isRepeat'];

function resolve(o: RepeatedTokensOptions) {
  const { vocabSize, seqLen, firstToken = 0, lastToken = vocabSize - 1, bos = -1, varyLength = 0, repeat = 1 } = o;
  const name = 'repeated-tokens';
  requireInt(name, 'vocabSize', vocabSize, 2);
  requireInt(name, 'firstToken', firstToken, 0, vocabSize - 2);
  requireInt(name, 'lastToken', lastToken, firstToken + 1, vocabSize - 1);
  requireInt(name, 'bos', bos, -1, vocabSize - 1);
  if (bos >= firstToken && bos <= lastToken)
    throw new Error(`${name}: bos ${bos} lies inside the content range [${firstToken}, ${lastToken}]`);
  requireInt(name, 'varyLength', varyLength, 0, 1);
  requireInt(name, 'repeat', repeat, 0, 1);
  const b = bos >= 0 ? 1 : 0;
  // the shortest copies with a scored position: L = 2 (varyLength draws from [ceil(Lmax/2), Lmax])
  requireInt(name, 'seqLen', seqLen, b + (varyLength ? 8 : 4));
  const maxHalf = Math.floor((seqLen - b) / 2);
  return {
    vocabSize,
    seqLen,
    firstToken,
    lastToken,
    bos,
    b,
    varyLength,
    repeat,
    maxHalf,
    minHalf: varyLength ? Math.ceil(maxHalf / 2) : maxHalf,
  };
}

/** Where a sequence's copies sit: the first copy starts at `first`, the second at first + length. */
export interface RepeatLayout {
  first: number;
  length: number;
}

/** The layout of sequence b of a repeated-tokens batch (from its labels: the scored cells' sourcePos and distance). */
export function repeatLayout(batch: TaskBatch, b: number): RepeatLayout {
  const [, T] = batch.shape;
  const { sourcePos, distance } = batch.labels;
  if (!sourcePos || !distance) throw new Error('repeatLayout: the batch has no sourcePos / distance labels (not a repeated-tokens batch?)');
  for (let t = 0; t < T; t++) {
    const i = b * T + t;
    if (batch.targets[i] !== IGNORE_INDEX && sourcePos[i] !== NO_LABEL) return { first: sourcePos[i] - 1, length: distance[i] };
  }
  throw new Error(`repeatLayout: sequence ${b} has no scored position`);
}

export const repeatedTokens: Task<RepeatedTokensOptions> = {
  name: 'repeated-tokens',
  description: 'L random tokens, then the same L again: predict the second copy from the first (in-context copying, no training).',
  vocabulary(opts) {
    const { vocabSize, firstToken, lastToken, bos } = resolve(opts);
    const named = [
      ...(bos >= 0 ? [{ name: 'BOS', first: bos, last: bos, description: 'beginning of sequence, position 0' }] : []),
      { name: 'content', first: firstToken, last: lastToken, description: 'uniformly random tokens; the second copy repeats the first' },
    ].sort((a, b) => a.first - b.first);
    // the ids between and around them (a language model's other special tokens) are never drawn
    const out: VocabEntry[] = [];
    let next = 0;
    for (const e of [...named, { name: '', first: vocabSize, last: vocabSize, description: '' }]) {
      if (e.first > next) out.push({ name: 'unused', first: next, last: e.first - 1, description: 'never in a sequence (special tokens)' });
      if (e.name) out.push(e);
      next = e.last + 1;
    }
    return out;
  },
  chance(opts) {
    const { firstToken, lastToken } = resolve(opts);
    return 1 / (lastToken - firstToken + 1);
  },
  baselines(opts) {
    const { firstToken, lastToken } = resolve(opts);
    // the solution reads the token after the current token's earlier occurrence; these read the context otherwise
    return contextBaselines('content token', firstToken, lastToken, {
      recent: 'the current token (the most recent content token)',
      frequent: 'the content token seen most often so far (ties: uniform among them)',
      seen: 'uniform over the distinct content tokens seen so far',
    });
  },
  generate(opts, rng: Rng, batch: number) {
    const { seqLen: T, firstToken, lastToken, bos, b: b0, repeat, minHalf, maxHalf } = resolve(opts);
    requireInt('repeated-tokens', 'batch', batch, 1);
    const out = emptyBatch(batch, T, REPEATED_TOKENS_LABELS);
    const { inputs, targets, labels } = out;
    // the control's fresh halves come from their own stream, so its other draws are the repeat batch's
    const fresh = rng.fork('fresh-second-half');
    const draw = (r: Rng) => r.int(firstToken, lastToken + 1);
    for (let b = 0; b < batch; b++) {
      const row = b * T;
      const L = minHalf === maxHalf ? maxHalf : rng.int(minHalf, maxHalf + 1);
      const first = T - 2 * L; // start of the first copy, after the BOS and the lead-in
      if (b0) inputs[row] = bos;
      for (let t = b0; t < first + L; t++) inputs[row + t] = draw(rng);
      for (let t = first + L; t < T; t++) {
        inputs[row + t] = repeat ? inputs[row + t - L] : draw(fresh);
        if (repeat) labels.isRepeat[row + t] = 1;
      }
      for (let t = first + L; t < T - 1; t++) {
        const i = row + t;
        targets[i] = inputs[i + 1];
        if (!repeat) continue;
        labels.copyToken[i] = inputs[i + 1];
        labels.sourcePos[i] = t + 1 - L;
        labels.distance[i] = L;
      }
    }
    return out;
  },
};

/** Per sequence, the accuracy of a model's predictions (argmax token ids [batch, T]) on a repeat batch and its control. */
export interface CopyingScores {
  /** the second copy's scored positions (the copying accuracy) */
  repeat: number[];
  /** the same positions when the second half is a fresh random sequence (the control) */
  fresh: number[];
  /** the first copy (positions predicting its own next token; random, so chance) */
  firstCopy: number[];
}

/**
 * The copying accuracy and its two controls, per sequence (the unit of the paired test), from a
 * repeat batch, the control batch generated with the same seed (repeat: 0), and the predictions on
 * each. The first-copy positions are those i of the first copy whose next token is in it too.
 */
export function copyingScores(
  repeatBatch: TaskBatch,
  controlBatch: TaskBatch,
  predRepeat: ArrayLike<number>,
  predControl: ArrayLike<number>,
): CopyingScores {
  const [B, T] = repeatBatch.shape;
  if (controlBatch.shape[0] !== B || controlBatch.shape[1] !== T)
    throw new Error(`copyingScores: control batch [${controlBatch.shape}] does not match the repeat batch [${repeatBatch.shape}]`);
  for (const [name, p] of [
    ['repeat', predRepeat],
    ['control', predControl],
  ] as const)
    if (p.length !== B * T) throw new Error(`copyingScores: ${name} predictions have ${p.length} values, the batch ${B * T}`);
  const out: CopyingScores = { repeat: [], fresh: [], firstCopy: [] };
  for (let b = 0; b < B; b++) {
    const { first, length: L } = repeatLayout(repeatBatch, b);
    let r = 0,
      f = 0,
      n = 0;
    for (let t = first + L; t < T - 1; t++) {
      const i = b * T + t;
      if (controlBatch.targets[i] === IGNORE_INDEX) throw new Error(`copyingScores: control sequence ${b} is not scored at ${t}`);
      n++;
      if (predRepeat[i] === repeatBatch.targets[i]) r++;
      if (predControl[i] === controlBatch.targets[i]) f++;
    }
    let h = 0;
    for (let t = first; t < first + L - 1; t++) if (predRepeat[b * T + t] === repeatBatch.inputs[b * T + t + 1]) h++;
    out.repeat.push(r / n);
    out.fresh.push(f / n);
    out.firstCopy.push(h / (L - 1));
  }
  return out;
}

/**
 * Generates `n` repeat sequences and their paired controls (same seed) and scores `predict` on both:
 * `predict` returns argmax token ids [batch, T] for a batch (a model's, or an oracle's in tests).
 */
export async function measureCopying(
  opts: RepeatedTokensOptions,
  rng: Rng,
  n: number,
  predict: (batch: TaskBatch) => Promise<ArrayLike<number>> | ArrayLike<number>,
): Promise<CopyingScores & { repeatBatch: TaskBatch; controlBatch: TaskBatch }> {
  if ((opts.repeat ?? 1) !== 1) throw new Error('measureCopying: opts.repeat must be 1 (the control is generated here)');
  const repeatBatch = repeatedTokens.generate(opts, rng.fork('sequences'), n);
  const controlBatch = repeatedTokens.generate({ ...opts, repeat: 0 }, rng.fork('sequences'), n);
  const scores = copyingScores(repeatBatch, controlBatch, await predict(repeatBatch), await predict(controlBatch));
  return { ...scores, repeatBatch, controlBatch };
}
