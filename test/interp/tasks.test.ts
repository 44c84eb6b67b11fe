import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Rng } from '../../engine/random.ts';
import {
  IGNORE_INDEX,
  NO_LABEL,
  getTask,
  induction,
  mqar,
  scoredAccuracy,
  selectiveCopying,
  tasks,
  type TaskBatch,
} from '../../interp/tasks/index.ts';
import { TRIGGER } from '../../interp/tasks/induction.ts';
import { BLANK, SEPARATOR } from '../../interp/tasks/selective-copying.ts';

const row = (a: Int32Array, b: number, T: number) => Array.from(a.subarray(b * T, (b + 1) * T));

function checkCommon(batch: TaskBatch, B: number, T: number, V: number): void {
  assert.equal(batch.shape, [B, T]);
  assert.is(batch.inputs.length, B * T);
  assert.is(batch.targets.length, B * T);
  for (const [name, l] of Object.entries(batch.labels)) assert.is(l.length, B * T, `label ${name}`);
  assert.ok(
    batch.inputs.every((t) => t >= 0 && t < V),
    'inputs in vocabulary',
  );
  assert.ok(
    batch.targets.every((t) => t === IGNORE_INDEX || (t >= 0 && t < V)),
    'targets in vocabulary or ignored',
  );
}

test('registry, vocabulary layouts tile [0, vocabSize), chance levels', () => {
  assert.equal(Object.keys(tasks).sort(), ['brown', 'induction', 'mqar', 'repeated-tokens', 'selective-copying']);
  assert.throws(() => getTask('copy'), /unknown task 'copy'/);
  const opts = { vocabSize: 21, seqLen: 64, numTokens: 4, numPairs: 4 };
  for (const task of Object.values(tasks)) {
    const layout = task.vocabulary(opts);
    let next = 0;
    for (const e of layout) {
      assert.is(e.first, next, `${task.name} ${e.name}`);
      assert.ok(e.last >= e.first);
      next = e.last + 1;
    }
    assert.is(next, 21, `${task.name} covers the vocabulary`);
  }
  assert.is(induction.chance(opts), 1 / 19);
  assert.is(selectiveCopying.chance(opts), 1 / 18);
  assert.is(mqar.chance(opts), 1 / 10); // 10 keys (1..10), 10 values (11..20)
});

test('induction: targets recomputed from the inputs alone match, labels agree', () => {
  const B = 32,
    T = 40,
    V = 12,
    m = 3;
  const batch = induction.generate({ vocabSize: V, seqLen: T, occurrences: m, minDistance: 3 }, new Rng('ind'), B);
  checkCommon(batch, B, T, V);
  const distances = new Set<number>();
  for (let b = 0; b < B; b++) {
    const x = row(batch.inputs, b, T),
      y = row(batch.targets, b, T);
    assert.is(x[0], 0, 'BOS');
    const triggers = x.flatMap((t, i) => (t === TRIGGER ? [i] : []));
    assert.is(triggers.length, m);
    const expect = new Array(T).fill(IGNORE_INDEX);
    for (let k = 1; k < m; k++) {
      assert.ok(triggers[k] - triggers[k - 1] >= 3, 'minDistance');
      expect[triggers[k]] = x[triggers[k - 1] + 1];
    }
    assert.equal(y, expect);
    for (let t = 0; t < T; t++) {
      const i = b * T + t;
      if (y[t] === IGNORE_INDEX) {
        assert.is(batch.labels.copyToken[i], NO_LABEL);
        continue;
      }
      assert.is(x[t + 1], y[t], 'the stream continues with the copied token');
      assert.is(batch.labels.copyToken[i], y[t]);
      assert.is(x[batch.labels.sourcePos[i]], y[t]);
      assert.is(x[t - batch.labels.distance[i]], TRIGGER);
      distances.add(batch.labels.distance[i]);
    }
    assert.ok(
      x.slice(1).every((t) => t >= 1),
      'no BOS after position 0',
    );
  }
  assert.ok(distances.size > 5, `distances vary: ${[...distances]}`);
});

test('selective copying: outputs are the prefix data tokens in order', () => {
  const B = 16,
    T = 30,
    V = 10,
    K = 5,
    L = T - 1 - K;
  const batch = selectiveCopying.generate({ vocabSize: V, seqLen: T, numTokens: K }, new Rng('sc'), B);
  checkCommon(batch, B, T, V);
  for (let b = 0; b < B; b++) {
    const x = row(batch.inputs, b, T),
      y = row(batch.targets, b, T);
    assert.is(x[L], SEPARATOR);
    assert.ok(x.slice(L + 1).every((t) => t === BLANK));
    const dataPos = x.slice(0, L).flatMap((t, i) => (t >= 3 ? [i] : []));
    assert.is(dataPos.length, K);
    assert.ok(
      x.slice(0, L).every((t) => t === 0 || t >= 3),
      'prefix holds only noise and data',
    );
    assert.equal(y, [...new Array(L + 1).fill(IGNORE_INDEX), ...dataPos.map((p) => x[p])]);
    dataPos.forEach((p, i) => {
      assert.is(batch.labels.dataIndex[b * T + p], i);
      assert.is(batch.labels.sourcePos[b * T + L + 1 + i], p);
      assert.is(batch.labels.outputIndex[b * T + L + 1 + i], i);
      assert.is(batch.labels.copyToken[b * T + L + 1 + i], x[p]);
    });
  }
});

test('MQAR: each query target is the value bound to its key; keys distinct', () => {
  const B = 16,
    T = 48,
    V = 41,
    N = 6,
    Q = 4;
  const batch = mqar.generate({ vocabSize: V, seqLen: T, numPairs: N, numQueries: Q }, new Rng('mqar'), B);
  checkCommon(batch, B, T, V);
  for (let b = 0; b < B; b++) {
    const x = row(batch.inputs, b, T),
      y = row(batch.targets, b, T);
    const bound = new Map<number, number>();
    for (let i = 0; i < N; i++) {
      assert.ok(x[2 * i] >= 1 && x[2 * i] <= 20, 'key range');
      assert.ok(x[2 * i + 1] >= 21, 'value range');
      assert.ok(!bound.has(x[2 * i]), 'distinct keys');
      bound.set(x[2 * i], x[2 * i + 1]);
    }
    const expect = new Array(T).fill(IGNORE_INDEX);
    let queries = 0;
    for (let t = 2 * N; t < T; t++) {
      if (x[t] >= 1 && x[t] <= 20) {
        expect[t] = bound.get(x[t]);
        queries++;
        assert.is(x[t + 1], expect[t], 'query followed by its value');
        const i = b * T + t,
          kp = batch.labels.keyPos[i];
        assert.is(x[kp], x[t]);
        assert.is(batch.labels.distance[i], t - kp);
        assert.is(batch.labels.value[i], expect[t]);
        assert.is(batch.labels.kvPair[b * T + kp], batch.labels.pairIndex[i]);
      }
    }
    assert.is(queries, Q);
    assert.equal(y, expect);
  }
});

test('generators are deterministic by seed, and scoredAccuracy scores only targets', () => {
  const opts = { vocabSize: 30, seqLen: 50, numTokens: 6, numPairs: 5 };
  for (const task of Object.values(tasks)) {
    const a = task.generate(opts, new Rng(9), 4),
      b = task.generate(opts, new Rng(9), 4),
      c = task.generate(opts, new Rng(10), 4);
    assert.equal(Array.from(a.inputs), Array.from(b.inputs), `${task.name} same seed`);
    assert.equal(Array.from(a.targets), Array.from(b.targets));
    assert.not.equal(Array.from(a.inputs), Array.from(c.inputs), `${task.name} other seed`);
    assert.is(scoredAccuracy(a, a.targets), 1);
    // Predicting the input token itself is never right at scored positions of the toy tasks (text repeats words: "<unk> <unk>";
    // uniformly random tokens repeat one another by chance)
    if (task.name !== 'brown' && task.name !== 'repeated-tokens') assert.is(scoredAccuracy(a, a.inputs), 0, task.name);
  }
  assert.throws(
    () => selectiveCopying.generate({ vocabSize: 10, seqLen: 10, numTokens: 5 }, new Rng(0), 1),
    /seqLen must be an integer in \[11/,
  );
  assert.throws(() => mqar.generate({ vocabSize: 9, seqLen: 40, numPairs: 5 }, new Rng(0), 1), /numPairs must be an integer in \[1, 4\]/);
});

test.run();
