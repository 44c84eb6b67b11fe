// interp/tasks/mixture.ts: the layout (task token, then the component's own sequence one position
// later, regenerated independently from the same stream), the shift of targets and labels
// (position labels move in value too), balance, the vocabulary, chance and baselines.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Rng } from '../../../engine/random.ts';
import {
  baselineAccuracy,
  IGNORE_INDEX,
  induction,
  mixtureTask,
  NO_LABEL,
  selectiveCopying,
  TASK_LABEL,
} from '../../../interp/tasks/index.ts';

const ind = { vocabSize: 16, occurrences: 4, seqLen: 64 };
const sc = { vocabSize: 12, numTokens: 3, seqLen: 64 };
const mix = mixtureTask([
  { task: induction, options: ind },
  { task: selectiveCopying, options: sc },
]);
const opts = { vocabSize: 18, seqLen: 40 };

test('mixture: vocabulary after the largest component, task tokens at 16 and 17', () => {
  assert.is(mix.firstTaskToken, 16);
  assert.is(mix.vocabSize, 18);
  const v = mix.vocabulary(opts);
  assert.equal(
    v.filter((e) => e.name.startsWith('TASK')).map((e) => [e.name, e.first, e.last]),
    [
      ['TASK induction', 16, 16],
      ['TASK selective-copying', 17, 17],
    ],
  );
  assert.ok(v.some((e) => e.name === 'induction: content' && e.first === 2 && e.last === 15));
  assert.ok(v.some((e) => e.name === 'selective-copying: data' && e.first === 3 && e.last === 11));
  assert.throws(() => mix.vocabulary({ vocabSize: 16, seqLen: 40 }), /mixture: vocabSize/);
  assert.throws(() => mixtureTask([{ task: induction, options: ind }]), /at least 2/);
});

test('mixture: each sequence is its component generated at seqLen - 1, shifted by one', () => {
  const b = mix.generateComponent(opts, 1, new Rng('m'), 3);
  const T = opts.seqLen;
  for (let s = 0; s < 3; s++) {
    // the same draws as the component itself: stream component1 / seq<s>, batch of one
    const own = selectiveCopying.generate({ ...sc, seqLen: T - 1 }, new Rng('m').fork('component1').fork(`seq${s}`), 1);
    assert.is(b.inputs[s * T], 17, 'task token at position 0');
    assert.is(b.targets[s * T], IGNORE_INDEX, 'the task token is not scored');
    for (let t = 0; t < T - 1; t++) {
      assert.is(b.inputs[s * T + 1 + t], own.inputs[t]);
      assert.is(b.targets[s * T + 1 + t], own.targets[t]);
      assert.is(b.labels.copyToken[s * T + 1 + t], own.labels.copyToken[t]);
      // a position label points one further, at the same token
      const p = own.labels.sourcePos[t];
      assert.is(b.labels.sourcePos[s * T + 1 + t], p === NO_LABEL ? NO_LABEL : p + 1);
      if (p !== NO_LABEL) assert.is(b.inputs[s * T + b.labels.sourcePos[s * T + 1 + t]], own.targets[t]);
      // induction's labels do not apply here
      assert.is(b.labels.isTrigger[s * T + 1 + t], NO_LABEL);
    }
    for (let t = 0; t < T; t++) assert.is(b.labels[TASK_LABEL][s * T + t], 1);
  }
});

test('mixture: batches are balanced between components and the order is seeded', () => {
  for (const n of [7, 8, 33]) {
    const b = mix.generate(opts, new Rng(`bal${n}`), n);
    const counts = [0, 0];
    for (let s = 0; s < n; s++) counts[b.inputs[s * opts.seqLen] - 16]++;
    assert.ok(Math.abs(counts[0] - counts[1]) <= 1, `batch ${n}: ${counts}`);
    assert.equal(mix.generate(opts, new Rng(`bal${n}`), n).inputs, b.inputs, 'same seed, same batch');
  }
  // the order is not fixed: over many draws, both components come first
  const first = new Set(Array.from({ length: 20 }, (_, i) => mix.generate(opts, new Rng(`o${i}`), 4).inputs[0]));
  assert.equal([...first].sort(), [16, 17]);
});

test('mixture: chance is the mean of the components; baselines read each component past the task token', () => {
  assert.equal(mix.componentChance(opts), [1 / 14, 1 / 9]);
  assert.ok(Math.abs(mix.chance(opts) - (1 / 14 + 1 / 9) / 2) < 1e-15);
  const bl = mix.baselines(opts);
  assert.is(bl.length, 3);
  // on a batch of one component, the mixture baseline equals that component's baseline on its own sequences
  const b = mix.generateComponent(opts, 0, new Rng('bl'), 8);
  const own = Array.from({ length: 8 }, (_, s) =>
    induction.generate({ ...ind, seqLen: opts.seqLen - 1 }, new Rng('bl').fork('component0').fork(`seq${s}`), 1),
  );
  const direct = induction.baselines({ ...ind, seqLen: opts.seqLen - 1 });
  bl.forEach((x, j) => {
    const want = baselineAccuracy(direct[j], own).accuracy;
    assert.ok(Math.abs(baselineAccuracy(x, [b]).accuracy - want) < 1e-12, `${x.name}`);
  });
});

test.run();
