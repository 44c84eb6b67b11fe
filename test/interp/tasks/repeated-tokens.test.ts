import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Rng } from '../../../engine/random.ts';
import { ANSWER_SOURCE, corruptAnswers } from '../../../interp/patching.ts';
import { answerSources } from '../../../interp/temporal.ts';
import {
  copyingScores,
  getTask,
  IGNORE_INDEX,
  measureCopying,
  NO_LABEL,
  repeatedTokens,
  type TaskBatch,
} from '../../../interp/tasks/index.ts';
import { repeatLayout, type RepeatLayout } from '../../../interp/tasks/repeated-tokens.ts';

const row = (b: TaskBatch, i: number) => Array.from(b.inputs.subarray(i * b.shape[1], (i + 1) * b.shape[1]));
const at = (a: Int32Array, b: TaskBatch, i: number, t: number) => a[i * b.shape[1] + t];

test('repeated-tokens: layout and labels at hand-checked positions (BOS, fixed L)', () => {
  assert.is(getTask('repeated-tokens'), repeatedTokens);
  // T = 11, BOS: L = 5, no lead-in: [BOS x1..x5 x1..x5]
  const opts = { vocabSize: 30, seqLen: 11, firstToken: 3, lastToken: 29, bos: 0 };
  const batch = repeatedTokens.generate(opts, new Rng('rt-layout'), 3);
  for (let b = 0; b < 3; b++) {
    const r = row(batch, b);
    assert.is(r[0], 0, 'BOS at 0');
    for (let t = 1; t <= 10; t++) assert.ok(r[t] >= 3 && r[t] <= 29, `content token at ${t}`);
    for (let t = 6; t <= 10; t++) assert.is(r[t], r[t - 5], `position ${t} repeats ${t - 5}`);
    // scored: 6..9 (position 5 holds x5, whose next token x1 has no earlier context to continue)
    for (let t = 0; t < 11; t++) {
      const scored = t >= 6 && t <= 9;
      assert.is(at(batch.targets, batch, b, t), scored ? r[t + 1] : IGNORE_INDEX, `target at ${t}`);
      assert.is(at(batch.labels.copyToken, batch, b, t), scored ? r[t + 1] : NO_LABEL, `copyToken at ${t}`);
      assert.is(at(batch.labels.sourcePos, batch, b, t), scored ? t - 4 : NO_LABEL, `sourcePos at ${t}`);
      assert.is(at(batch.labels.distance, batch, b, t), scored ? 5 : NO_LABEL, `distance at ${t}`);
      assert.is(at(batch.labels.isRepeat, batch, b, t), t >= 6 ? 1 : NO_LABEL, `isRepeat at ${t}`);
    }
    // the answer really sits at sourcePos: position 6 (x1) predicts x2, which is at position 2
    assert.is(at(batch.targets, batch, b, 6), r[2]);
    assert.equal(repeatLayout(batch, b), { first: 1, length: 5 });
  }
  // T = 12 without BOS: L = 6, no lead-in; T = 12 with BOS: L = 5 and one lead-in token at position 1
  assert.equal(repeatLayout(repeatedTokens.generate({ vocabSize: 30, seqLen: 12 }, new Rng('x'), 1), 0), { first: 0, length: 6 });
  const lead = repeatedTokens.generate({ ...opts, seqLen: 12 }, new Rng('lead'), 1);
  assert.equal(repeatLayout(lead, 0), { first: 2, length: 5 });
  assert.is(lead.labels.isRepeat[1], NO_LABEL, 'the lead-in is not a repeat');
  assert.is(lead.targets[6], IGNORE_INDEX, 'the last token of the first copy is not scored');
  assert.is(lead.targets[7], lead.inputs[8]);
  assert.is(lead.labels.sourcePos[7], 3);
});

test('repeated-tokens: varyLength draws L in [ceil(Lmax/2), Lmax] per sequence; the task facts', () => {
  const opts = { vocabSize: 50, seqLen: 21, firstToken: 1, bos: 0, varyLength: 1 };
  const batch = repeatedTokens.generate(opts, new Rng('vary'), 200);
  const Ls = new Set<number>();
  for (let b = 0; b < 200; b++) {
    const { first, length: L } = repeatLayout(batch, b);
    Ls.add(L);
    assert.is(first, 21 - 2 * L, 'the copies end at the last position');
    const r = row(batch, b);
    for (let t = first + L; t < 21; t++) assert.is(r[t], r[t - L]);
  }
  assert.equal(
    [...Ls].sort((a, b) => a - b),
    [5, 6, 7, 8, 9, 10],
  );
  // answers at several distances: step 8's source test finds matched controls
  assert.ok(new Set(answerSources(batch).map((q) => q.answer - q.source)).size > 1);
  assert.is(repeatedTokens.chance(opts), 1 / 49);
  assert.equal(
    repeatedTokens.vocabulary(opts).map((v) => [v.name, v.first, v.last]),
    [
      ['BOS', 0, 0],
      ['content', 1, 49],
    ],
  );
  // "most recent" reads the current token: on a repeat it is never the answer unless tokens collide
  // the ids outside BOS and the content range (special tokens) are named as never drawn, so the layout tiles the vocabulary
  assert.equal(
    repeatedTokens.vocabulary({ vocabSize: 10, seqLen: 20, firstToken: 3, lastToken: 8, bos: 0 }).map((v) => [v.name, v.first, v.last]),
    [
      ['BOS', 0, 0],
      ['unused', 1, 2],
      ['content', 3, 8],
      ['unused', 9, 9],
    ],
  );
  assert.is(repeatedTokens.baselines(opts)[0].guess(Int32Array.from([0, 4, 7, 4]), 3)[0], 4);
});

test('repeated-tokens: the control (repeat 0) has the same first halves with a fresh second half, scored at the same positions', () => {
  const opts = { vocabSize: 40, seqLen: 20, firstToken: 2, bos: 1, varyLength: 1 };
  const rep = repeatedTokens.generate(opts, new Rng('pair'), 50);
  const ctl = repeatedTokens.generate({ ...opts, repeat: 0 }, new Rng('pair'), 50);
  let same = 0,
    n = 0;
  for (let b = 0; b < 50; b++) {
    const { first, length: L } = repeatLayout(rep, b);
    const r = row(rep, b),
      c = row(ctl, b);
    assert.equal(c.slice(0, first + L), r.slice(0, first + L), 'BOS, lead-in and first copy are the same');
    for (let t = first + L; t < 20; t++) {
      n++;
      if (c[t] === r[t]) same++;
      assert.ok(c[t] >= 2 && c[t] <= 39);
    }
    for (let t = 0; t < 20; t++) {
      assert.is(at(ctl.targets, ctl, b, t) === IGNORE_INDEX, at(rep.targets, rep, b, t) === IGNORE_INDEX, `scored at ${t}`);
      if (at(ctl.targets, ctl, b, t) !== IGNORE_INDEX) assert.is(at(ctl.targets, ctl, b, t), c[t + 1]);
      for (const name of ['copyToken', 'sourcePos', 'distance', 'isRepeat']) assert.is(at(ctl.labels[name], ctl, b, t), NO_LABEL);
    }
  }
  // a fresh half matches the first copy only by chance (1/38 per position)
  assert.ok(same / n < 0.08, `fresh tokens equal the repeat at ${same}/${n}`);
});

test('a perfect copier scores 1 on the repeat and chance on the control and the first copy; a non-copier chance everywhere', async () => {
  const K = 4; // content tokens 1..4: chance 0.25, measurable
  const opts = { vocabSize: 6, seqLen: 11, firstToken: 1, lastToken: K, bos: 0 };
  // the oracle knows the layout (the planted truth): it copies the token L back once the second copy
  // has begun and guesses token 1 before that; a control batch carries no labels, so it keeps the
  // layouts of the repeat batch (measureCopying predicts that first; the two share them)
  let layouts: RepeatLayout[] = [];
  const oracle = (batch: TaskBatch) => {
    const [B, T] = batch.shape;
    if (batch.labels.sourcePos.some((v) => v !== NO_LABEL)) layouts = Array.from({ length: B }, (_, b) => repeatLayout(batch, b));
    const out = new Int32Array(B * T).fill(1);
    for (let b = 0; b < B; b++) {
      const { first, length: L } = layouts[b];
      for (let t = first + L; t < T - 1; t++) out[b * T + t] = batch.inputs[b * T + t + 1 - L];
    }
    return out;
  };
  const s = await measureCopying(opts, new Rng('oracle'), 400, oracle);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  assert.is(mean(s.repeat), 1, 'perfect on the repeat');
  // 400 sequences x 4 positions of Bernoulli(1/4): sd 0.011; 4 sd
  assert.ok(Math.abs(mean(s.fresh) - 1 / K) < 0.045, `control ${mean(s.fresh)}`);
  assert.ok(Math.abs(mean(s.firstCopy) - 1 / K) < 0.045, `first copy ${mean(s.firstCopy)}`);
  const flat = await measureCopying(opts, new Rng('oracle'), 400, (b) => new Int32Array(b.inputs.length).fill(1));
  assert.ok(Math.abs(mean(flat.repeat) - 1 / K) < 0.045 && Math.abs(mean(flat.fresh) - 1 / K) < 0.045, 'a constant guess: chance');
  // scores recomputed by hand on one sequence
  const one = copyingScores(s.repeatBatch, s.controlBatch, oracle(s.repeatBatch), new Int32Array(s.controlBatch.inputs.length));
  assert.is(one.repeat[0], 1);
  assert.is(one.fresh[0], 0, 'token 0 is never a target');
  assert.throws(
    () => copyingScores(s.repeatBatch, s.controlBatch, new Int32Array(3), new Int32Array(3)),
    /repeat predictions have 3 values/,
  );
});

test('patching: corruptAnswers through sourcePos swaps every answer and keeps the sequence a repeat', () => {
  const opts = { vocabSize: 40, seqLen: 20, firstToken: 3, bos: 0, varyLength: 1 };
  const batch = repeatedTokens.generate(opts, new Rng('corrupt-rt'), 30);
  const bad = corruptAnswers(repeatedTokens, opts, batch, ANSWER_SOURCE['repeated-tokens'], new Rng('c'));
  for (let b = 0; b < 30; b++) {
    const { first, length: L } = repeatLayout(batch, b);
    const c = row(bad, b),
      r = row(batch, b);
    assert.equal(c.slice(0, first + 1), r.slice(0, first + 1), 'unchanged up to the first source');
    for (let t = first + L; t < 20; t++) assert.is(c[t], c[t - L], `still a repeat at ${t}`);
    for (let t = first + L; t < 19; t++) {
      const i = b * 20 + t;
      assert.is.not(bad.targets[i], batch.targets[i], `another answer at ${t}`);
      assert.is(bad.targets[i], c[t + 1], 'the corrupted answer is the corrupted next token');
    }
  }
});

test('repeated-tokens: bad options fail with one line naming the option', async () => {
  assert.throws(
    () => repeatedTokens.generate({ vocabSize: 30, seqLen: 20, firstToken: 0, bos: 0 }, new Rng('e'), 1),
    /bos 0 lies inside the content range/,
  );
  assert.throws(
    () => repeatedTokens.generate({ vocabSize: 30, seqLen: 4, bos: 0, firstToken: 1 }, new Rng('e'), 1),
    /seqLen must be an integer in \[5/,
  );
  assert.throws(() => repeatedTokens.generate({ vocabSize: 30, seqLen: 20, lastToken: 30 }, new Rng('e'), 1), /lastToken must be/);
  assert.throws(() => repeatedTokens.generate({ vocabSize: 30, seqLen: 20, repeat: 2 }, new Rng('e'), 1), /repeat must be/);
  const err = await measureCopying({ vocabSize: 30, seqLen: 20, repeat: 0 }, new Rng('e'), 2, () => []).catch((e: Error) => e);
  assert.match(String(err), /opts.repeat must be 1/);
});

test.run();
