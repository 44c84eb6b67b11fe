// interp/probe-eval.ts: held-out sparse probes on planted variables, against their shuffled control.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as mi from '../../engine/index.ts';
import { evaluateProbe } from '../../interp/probe-eval.ts';
import type { TaskVariable } from '../../interp/task-variables.ts';

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
  const v: TaskVariable = { name: 'v', label: 'v', kind, description: '', rows: Int32Array.from({ length: n }, (_, i) => i), values };
  return { X: { data, rows: n, cols: p }, v };
}

/** The probe-minus-control difference is heldOut - control inside its paired interval, and the floor that of nPerm random sign flips. */
function checkDifference(e: ReturnType<typeof evaluateProbe>, nPerm: number) {
  assert.ok(Math.abs(e.difference - (e.heldOut - e.control)) < 1e-12, `difference ${e.difference} vs ${e.heldOut} - ${e.control}`);
  assert.ok(e.differenceInterval[0] <= e.difference && e.difference <= e.differenceInterval[1] && e.differenceInterval[0] > 0);
  assert.is(e.pFloor, 1 / (nPerm + 1));
  assert.ok(e.p >= e.pFloor);
}

test('evaluateProbe: a planted binary variable is read from its column, class-balanced, above the shuffled control', () => {
  const { X, v } = plantedProbe('binary');
  const e = evaluateProbe(X, v, new mi.Rng('e'), { folds: 3, nBoot: 200, nPerm: 200 });
  assert.is(e.kind, 'logistic');
  assert.ok(e.heldOut > 0.9, `accuracy ${e.heldOut}`);
  assert.ok(Math.abs(e.chance - 0.5) < 0.15, `balanced test rows, majority ${e.chance}`);
  assert.ok(e.control < 0.7, `control ${e.control}`);
  assert.ok(e.p < 0.01 && e.interval[0] <= e.heldOut && e.heldOut <= e.interval[1]);
  assert.ok(e.selected.includes(3));
  checkDifference(e, 200);
  assert.is(e.coefficients.length, e.selected.length);
  assert.ok(e.coefficients[e.selected.indexOf(3)] > 0);
  assert.ok(e.nTrain + e.nTest <= 2 * 600 * 0.2 + 60, 'balanced subsample: about twice the positives');
  const again = evaluateProbe(X, v, new mi.Rng('e'), { folds: 3, nBoot: 200, nPerm: 200 });
  assert.equal(again, e, 'deterministic for a seed');
});

test('evaluateProbe: a planted continuous variable (lasso and elastic net) has high held-out R2; the control has none', () => {
  const { X, v } = plantedProbe('continuous');
  for (const alpha of [1, 0.5]) {
    const e = evaluateProbe(X, v, new mi.Rng('c'), { folds: 3, alpha, nBoot: 200, nPerm: 200 });
    assert.is(e.kind, alpha === 1 ? 'lasso' : 'elasticnet');
    assert.ok(e.heldOut > 0.9, `R2 ${e.heldOut}`);
    assert.ok(e.control < 0.1, `control R2 ${e.control}`);
    assert.ok(e.selected.includes(3) && e.selected.includes(5), `selected ${e.selected}`);
    assert.ok(e.p < 0.01);
    checkDifference(e, 200);
  }
  assert.throws(
    () =>
      evaluateProbe(
        { ...X, rows: 10, data: X.data.subarray(0, 120) },
        { ...v, rows: v.rows.subarray(0, 10), values: v.values.subarray(0, 10) },
        new mi.Rng('x'),
      ),
    /too few/,
  );
});

test.run();
