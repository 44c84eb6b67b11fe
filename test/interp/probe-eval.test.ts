// interp/probe-eval.ts: held-out sparse probes on planted variables, split by sequence, against a
// control task and baseline features.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as mi from '../../engine/index.ts';
import { controlTaskLabels, evaluateProbe, groupedSplit, type ProbeComparison } from '../../interp/probe-eval.ts';
import type { TaskVariable } from '../../interp/task-variables.ts';

const SEQ = 10; // rows per planted sequence

/** The per-row bookkeeping of a variable over rows 0..n-1: sequences of SEQ rows, random tokens 0..7. */
function rowsInfo(n: number, rng: mi.Rng) {
  return {
    rows: Int32Array.from({ length: n }, (_, i) => i),
    sequence: Int32Array.from({ length: n }, (_, i) => Math.floor(i / SEQ)),
    position: Int32Array.from({ length: n }, (_, i) => i % SEQ),
    token: Int32Array.from({ length: n }, () => rng.int(0, 8)),
  };
}

/** Rows [n, p] of noise; the variable is planted in column 3 (and 5 for the continuous one). */
function plantedProbe(kind: 'binary' | 'continuous') {
  const rng = new mi.Rng(`probe-${kind}`);
  const n = 600,
    p = 12;
  const data = Float32Array.from({ length: n * p }, () => rng.normal());
  const values = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    values[i] = kind === 'binary' ? (rng.uniform() < 0.2 ? 1 : 0) : rng.normal();
    if (kind === 'binary') data[i * p + 3] += 4 * values[i];
    else {
      data[i * p + 3] = values[i] + 0.2 * rng.normal();
      data[i * p + 5] = -values[i] + 0.2 * rng.normal();
    }
  }
  const v: TaskVariable = { name: 'v', label: 'v', kind, description: '', values, ...rowsInfo(n, rng) };
  return { X: { data, rows: n, cols: p }, v };
}

/** A comparison's difference is the probe's score minus its own, inside its paired interval; the floor that of nPerm flips. */
function checkComparison(heldOut: number, c: ProbeComparison, nPerm: number, above = true) {
  assert.ok(Math.abs(c.difference - (heldOut - c.score)) < 1e-12, `${c.against}: difference ${c.difference} vs ${heldOut} - ${c.score}`);
  assert.ok(c.differenceInterval[0] <= c.difference && c.difference <= c.differenceInterval[1]);
  if (above) assert.ok(c.differenceInterval[0] > 0, `${c.against}: interval ${c.differenceInterval}`);
  assert.is(c.pFloor, 1 / (nPerm + 1));
  assert.ok(c.p >= c.pFloor);
}

/** No test sequence among the training ones, and every training sequence in one CV fold. */
function checkDisjoint(e: ReturnType<typeof evaluateProbe>) {
  const foldOf = new Map<number, number>();
  e.trainRowSequence.forEach((s, i) => {
    assert.is(foldOf.get(s) ?? e.cvFolds[i], e.cvFolds[i], `sequence ${s} in two CV folds`);
    foldOf.set(s, e.cvFolds[i]);
  });
  assert.is(foldOf.size, e.trainSequences);
  const train = new Set(e.trainSequenceIds);
  assert.ok(
    e.testSequenceIds.every((s) => !train.has(s)),
    'a sequence on both sides',
  );
  assert.is(e.trainSequences + e.testSequences, new Set([...e.trainSequenceIds, ...e.testSequenceIds]).size);
}

test('groupedSplit: whole sequences on each side, about testFraction of the rows held out, deterministic', () => {
  // 40 sequences of 1..6 rows, interleaved
  const seqs: number[] = [];
  for (let s = 0; s < 40; s++) for (let r = 0; r <= s % 6; r++) seqs.push(s);
  const order = new mi.Rng('rows').permutation(seqs.length);
  const seqOf = order.map((i) => seqs[i]);
  const sp = groupedSplit(seqOf, 0.3, new mi.Rng('split'));
  assert.is(sp.train.length + sp.test.length, seqOf.length);
  const testSeqs = new Set(sp.test.map((i) => seqOf[i])),
    trainSeqs = new Set(sp.train.map((i) => seqOf[i]));
  for (const s of testSeqs) assert.ok(!trainSeqs.has(s), `sequence ${s} on both sides`);
  assert.equal(
    [...testSeqs].sort((a, b) => a - b),
    [...sp.testSequences].sort((a, b) => a - b),
  );
  // the test side stops at the first sequence that reaches 30%: overshoot under one sequence (<= 6 rows)
  const want = Math.round(seqOf.length * 0.3);
  assert.ok(sp.test.length >= want && sp.test.length < want + 6, `test rows ${sp.test.length}, want ${want}`);
  assert.equal(groupedSplit(seqOf, 0.3, new mi.Rng('split')), sp);
});

test('controlTaskLabels: one label per type, drawn from the variable`s labels', () => {
  const rng = new mi.Rng('ct');
  const n = 2000;
  const tok = Int32Array.from({ length: n }, () => rng.int(0, 20)),
    pos = Int32Array.from({ length: n }, (_, i) => i % 25);
  const values = Float64Array.from({ length: n }, (_, i) => (i % 4 === 0 ? 1 : 0)); // 25% ones
  const lab = controlTaskLabels([tok, pos], values, new mi.Rng('draw'));
  const byType = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const k = `${tok[i]},${pos[i]}`;
    if (byType.has(k)) assert.is(lab[i], byType.get(k), `type ${k} has two labels`);
    else byType.set(k, lab[i]);
  }
  const ones = [...byType.values()].filter((x) => x === 1).length / byType.size;
  // about 500 types: the share of 1s is 0.25 +- 0.02 (one binomial sd) -- 0.1 is five sds
  assert.ok(Math.abs(ones - 0.25) < 0.1, `share of types labelled 1: ${ones}`);
  assert.ok(lab.every((x) => x === 0 || x === 1));
});

test('evaluateProbe: a planted binary variable is read from its column, class-balanced, above the control task and a noise baseline', () => {
  const { X, v } = plantedProbe('binary');
  const nr = new mi.Rng('noise');
  const noise = { data: Float32Array.from({ length: X.rows * 6 }, () => nr.normal()), rows: X.rows, cols: 6 };
  const opts = { folds: 3, nBoot: 200, nPerm: 200, nPermFor: { noise: 300 } };
  const e = evaluateProbe(X, v, new mi.Rng('e'), opts, [
    { name: 'noise', X: noise },
    { name: 'same', X },
  ]);
  assert.is(e.kind, 'logistic');
  assert.ok(e.heldOut > 0.9, `accuracy ${e.heldOut}`);
  assert.ok(Math.abs(e.chance - 0.5) < 0.15, `balanced test rows, majority ${e.chance}`);
  assert.ok(e.control.score < 0.7, `control task ${e.control.score}`);
  assert.ok(e.control.p < 0.01 && e.interval[0] <= e.heldOut && e.heldOut <= e.interval[1]);
  checkComparison(e.heldOut, e.control, 200);
  const [noiseB, same] = e.baselines;
  checkComparison(e.heldOut, noiseB, 300);
  assert.ok(noiseB.score < 0.7, `noise baseline ${noiseB.score}`);
  // the same features with the same rows, split and folds give the same probe: difference exactly 0
  assert.is(same.score, e.heldOut);
  assert.is(same.difference, 0);
  assert.ok(same.p > 0.5, `identical probes: p ${same.p}`);
  assert.ok(e.selected.includes(3));
  assert.is(e.coefficients.length, e.selected.length);
  assert.ok(e.coefficients[e.selected.indexOf(3)] > 0);
  assert.ok(e.nTrain + e.nTest <= 2 * 600 * 0.2 + 60, 'balanced subsample: about twice the positives');
  checkDisjoint(e);
  const again = evaluateProbe(X, v, new mi.Rng('e'), opts, [
    { name: 'noise', X: noise },
    { name: 'same', X },
  ]);
  assert.equal(again, e, 'deterministic for a seed');
  assert.throws(() => evaluateProbe(X, { ...v, sequence: undefined }, new mi.Rng('e')), /needs sequence/);
});

test('evaluateProbe: a planted continuous variable (lasso and elastic net) has high held-out R2; the control task has none', () => {
  const { X, v } = plantedProbe('continuous');
  for (const alpha of [1, 0.5]) {
    const e = evaluateProbe(X, v, new mi.Rng('c'), { folds: 3, alpha, nBoot: 200, nPerm: 200 });
    assert.is(e.kind, alpha === 1 ? 'lasso' : 'elasticnet');
    assert.ok(e.heldOut > 0.9, `R2 ${e.heldOut}`);
    assert.ok(e.control.score < 0.1, `control task R2 ${e.control.score}`);
    assert.ok(e.selected.includes(3) && e.selected.includes(5), `selected ${e.selected}`);
    assert.ok(e.control.p < 0.01);
    checkComparison(e.heldOut, e.control, 200);
    checkDisjoint(e);
  }
  assert.throws(
    () =>
      evaluateProbe(
        { ...X, rows: 10, data: X.data.subarray(0, 120) },
        {
          ...v,
          rows: v.rows.subarray(0, 10),
          values: v.values.subarray(0, 10),
          sequence: v.sequence!.subarray(0, 10),
          position: v.position!.subarray(0, 10),
          token: v.token!.subarray(0, 10),
        },
        new mi.Rng('x'),
      ),
    /too few/,
  );
});

test('evaluateProbe: a planted leak -- a label constant within each sequence, read only through per-sequence noise -- is read by a row split and not by the grouped one', () => {
  // 48 sequences of SEQ rows; each sequence has its own random 60-dim vector (the rows add a little
  // noise to it) and a random 0/1 label that nothing in the features relates to. A row split puts
  // rows of every sequence on both sides, so a probe can memorise the sequences' vectors; split by
  // sequence, the test sequences' vectors are new and the label cannot be read.
  const rng = new mi.Rng('leak');
  const nSeq = 48,
    d = 60,
    n = nSeq * SEQ;
  const seqVec = Array.from({ length: nSeq }, () => Float64Array.from({ length: d }, () => rng.normal()));
  const seqLabel = Array.from({ length: nSeq }, (_, s) => s % 2); // balanced over sequences
  const data = new Float64Array(n * d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) data[i * d + j] = seqVec[Math.floor(i / SEQ)][j] + 0.1 * rng.normal();
  const info = rowsInfo(n, rng);
  const v: TaskVariable = {
    name: 'leak',
    label: 'leak',
    kind: 'binary',
    description: '',
    ...info,
    values: Float64Array.from({ length: n }, (_, i) => seqLabel[Math.floor(i / SEQ)]),
  };
  const X = { data, rows: n, cols: d };
  const opts = { folds: 4, nBoot: 200, nPerm: 500 };
  // the row split: every row its own "sequence"
  const rowSplit = evaluateProbe(X, { ...v, sequence: Int32Array.from({ length: n }, (_, i) => i) }, new mi.Rng('p'), opts);
  assert.ok(rowSplit.heldOut > 0.85, `row split reads the leak: ${rowSplit.heldOut}`);
  const grouped = evaluateProbe(X, v, new mi.Rng('p'), opts);
  checkDisjoint(grouped);
  assert.ok(grouped.testSequences >= 14, `${grouped.testSequences} test sequences`);
  // at chance: its interval holds 0.5 and it does not beat the control task
  assert.ok(grouped.interval[0] <= 0.5 && grouped.interval[1] >= 0.5, `grouped accuracy ${grouped.heldOut} ${grouped.interval}`);
  assert.ok(grouped.control.p > 0.05, `grouped vs control task p ${grouped.control.p}`);
});

test('evaluateProbe: selectivity -- features that memorise (token, position) types read the control task as well as a token variable; token features cannot', () => {
  // 120 sequences of SEQ rows, tokens 0..3: 40 types. The variable is a random function of the token.
  const rng = new mi.Rng('sel');
  const n = 120 * SEQ;
  const info = rowsInfo(n, rng);
  const token = Int32Array.from(info.token, (t) => t % 4);
  const f = [0, 1, 1, 0];
  const v: TaskVariable = {
    name: 'f(token)',
    label: 'f',
    kind: 'binary',
    description: '',
    ...info,
    token,
    values: Float64Array.from(token, (t) => f[t]),
  };
  const oneHot = (cols: number, col: (i: number) => number) => {
    const data = new Float64Array(n * cols);
    for (let i = 0; i < n; i++) data[i * cols + col(i)] = 1;
    return { data, rows: n, cols };
  };
  const types = oneHot(40, (i) => token[i] * SEQ + info.position[i]);
  const tokens = oneHot(4, (i) => token[i]);
  const opts = { folds: 3, nBoot: 200, nPerm: 200, maxSamples: 1200 };
  const byType = evaluateProbe(types, v, new mi.Rng('s'), opts);
  const byToken = evaluateProbe(tokens, v, new mi.Rng('s'), opts);
  assert.ok(byType.heldOut > 0.95 && byToken.heldOut > 0.95, `both read f(token): ${byType.heldOut}, ${byToken.heldOut}`);
  // type one-hots memorise any labelling of the types: the control task is read too, selectivity ~ 0
  assert.ok(byType.control.score > 0.9, `type features on the control task ${byType.control.score}`);
  assert.ok(byType.control.difference < 0.1, `selectivity of memorising features ${byType.control.difference}`);
  // token one-hots cannot read labels that vary with position within a token (the best rule from a token
  // is the majority of its 10 positions' random labels: expected accuracy (5 + E|Bin(10, 1/2) - 5|) / 10 = 0.62): selective
  assert.ok(byToken.control.score < 0.8, `token features on the control task ${byToken.control.score}`);
  assert.ok(byToken.control.difference > 0.15, `selectivity of token features ${byToken.control.difference}`);
});

test.run();
