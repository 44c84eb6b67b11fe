import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  bigramModel,
  countNgrams,
  fitNgrams,
  ngramCrossEntropy,
  streamCrossEntropy,
  unigramModel,
  unigramProbs,
} from '../../../interp/text/ngram.ts';
import { IGNORE_INDEX, type TaskBatch } from '../../../interp/tasks/types.ts';

// vocabulary of 4; training stream 0 1 2 1 2 3 (unigram counts 1 2 2 1, N = 6)
const STREAM = [0, 1, 2, 1, 2, 3];
const close = (a: number, b: number, msg?: string) => assert.ok(Math.abs(a - b) < 1e-12, `${msg ?? ''} ${a} vs ${b}`);

test('unigram add-k and interpolated bigram against a hand computation', () => {
  const c = countNgrams([STREAM], 4);
  assert.equal(Array.from(c.unigram), [1, 2, 2, 1]);
  assert.equal(Array.from(c.context), [1, 2, 2, 0]);
  assert.is(c.bigram.get(1 * 4 + 2), 2);
  const uni = unigramProbs(c, 1); // (c + 1) / (6 + 4)
  assert.equal(Array.from(uni), [0.2, 0.3, 0.3, 0.2]);
  const bi = bigramModel(c, uni, 0.5);
  close(bi(1, 2), 0.5 * (2 / 2) + 0.5 * 0.3); // 0.65
  close(bi(2, 1), 0.5 * (1 / 2) + 0.5 * 0.3); // 0.4
  close(bi(2, 0), 0.5 * 0 + 0.5 * 0.2); // 0.1
  close(bi(3, 1), 0.3, 'an unseen context falls back to the unigram');
  // every conditional distribution sums to 1
  for (let v = 0; v < 4; v++)
    close(
      [0, 1, 2, 3].reduce((s, w) => s + bi(v, w), 0),
      1,
    );
});

test('ngramCrossEntropy scores P(target | input) at the scored positions, per sequence and overall', () => {
  const c = countNgrams([STREAM], 4);
  const uni = unigramProbs(c, 1);
  const bi = bigramModel(c, uni, 0.5);
  // two windows of 3: inputs 1 2 0 -> targets 2 1 (ignored); inputs 2 2 3 -> 0 3 1
  const batch: TaskBatch = {
    inputs: Int32Array.from([1, 2, 0, 2, 2, 3]),
    targets: Int32Array.from([2, 1, IGNORE_INDEX, 0, 3, 1]),
    labels: {},
    shape: [2, 3],
  };
  const r = ngramCrossEntropy(bi, [batch]);
  const s1 = -Math.log(0.65) - Math.log(0.4);
  // P(0|2) = 0.5*0 + 0.5*0.2 = 0.1; P(3|2) = 0.5*(1/2) + 0.5*0.2 = 0.35; P(1|3) = the unigram's 0.3
  const s2 = -Math.log(0.1) - Math.log(0.35) - Math.log(0.3);
  close(r.perSequence[0], s1 / 2);
  close(r.perSequence[1], s2 / 3);
  close(r.mean, (s1 + s2) / 5);
  assert.is(r.scored, 5);
  close(ngramCrossEntropy(unigramModel(uni), [batch]).mean, -(Math.log(0.3) * 3 + Math.log(0.2) + Math.log(0.2)) / 5);
});

test('fitNgrams chooses k and lambda by dev cross-entropy, then counts fit and dev together', () => {
  // dev repeats the training bigrams exactly: the least smoothing on the grid wins
  const fit = [[0, 1, 0, 1, 0, 1, 2, 3, 2, 3]];
  const dev = [[0, 1, 0, 1, 2, 3]];
  const f = fitNgrams(fit, dev, 4);
  assert.is(f.lambda, 0.95);
  const all = countNgrams([...fit, ...dev], 4);
  const uni = unigramProbs(all, f.k);
  close(f.bigram(0, 1), bigramModel(all, uni, 0.95)(0, 1));
  close(f.devBigram, streamCrossEntropy(bigramModel(countNgrams(fit, 4), unigramProbs(countNgrams(fit, 4), f.k), 0.95), dev));
  assert.throws(() => countNgrams([[0, 4]], 4), /token 4 outside \[0, 4\)/);
});

test.run();
