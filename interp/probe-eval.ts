// A sparse probe judged on rows it never saw, next to a shuffled-label control.
//
// The rows where the variable is defined are subsampled (binary variables class-balanced, so
// chance is 1/2 and a rare indicator like "is the trigger" cannot score by always saying no),
// split into train and test (seeded), and the probe (interp/probes.ts: L1 logistic, or Lasso /
// ElasticNet, lambda by k-fold CV on the training rows only) is scored on the test rows. The
// control is the same probe fitted to the training rows with their labels shuffled. Intervals
// resample test rows; the p-value is a paired sign-flip test on the per-row scores (correct /
// squared error) of probe and control. The probe's score minus the control's is the value a claim
// over seeds averages (steps/step04-probes.ts), with its own paired interval over the test rows.
import type { Rng } from '../engine/random.ts';
import { linearProbeCV, logisticProbeCV, predictLinear, predictLogistic, type Matrix } from './probes.ts';
import { bootstrapCI, pairedPermutationTest } from './stats.ts';
import type { TaskVariable } from './task-variables.ts';

export interface ProbeEvalOptions {
  /** ElasticNet mixing for continuous variables and the logistic penalty (1 = lasso / pure L1) */
  alpha?: number;
  folds?: number;
  /** rows used at most (before the split) */
  maxSamples?: number;
  /** fraction of the rows held out for testing (default 0.3) */
  testFraction?: number;
  nLambda?: number;
  lambdaRatio?: number;
  nBoot?: number;
  nPerm?: number;
  /** coordinate-descent convergence threshold and sweep cap per lambda (defaults 1e-6, 1000: a
   *  probe needs a good fit, not the last digit, and nearly collinear activations converge slowly) */
  tol?: number;
  maxSweeps?: number;
  /** logistic: IRLS iterations per lambda (default 25; separable classes otherwise use them all) */
  maxOuter?: number;
}

export interface ProbeEval {
  kind: 'logistic' | 'lasso' | 'elasticnet';
  metric: 'accuracy' | 'r2';
  /** test accuracy or R2 */
  heldOut: number;
  interval: [number, number];
  /** accuracy of the majority class of the test rows (binary), 0 for R2 */
  chance: number;
  /** the shuffled-label probe's test score and interval */
  control: number;
  controlInterval: [number, number];
  /** one-sided paired permutation p: probe better than the control on the test rows, and the floor of that test */
  p: number;
  pFloor: number;
  /** heldOut minus control, with a paired bootstrap interval (both probes scored on the same resampled test rows) */
  difference: number;
  differenceInterval: [number, number];
  /** nonzero dimensions and their coefficients (original units) */
  selected: number[];
  coefficients: number[];
  lambda: number;
  nTrain: number;
  nTest: number;
}

function takeRows(X: Matrix, rows: ArrayLike<number>): Matrix {
  const data = new Float64Array(rows.length * X.cols);
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i];
    for (let j = 0; j < X.cols; j++) data[i * X.cols + j] = X.data[r * X.cols + j];
  }
  return { data, rows: rows.length, cols: X.cols };
}

/** Indices into v.values, class-balanced (equal counts of 0 and 1), at most maxRows, ascending. */
export function balancedRows(v: { values: ArrayLike<number> }, maxRows: number, rng: Rng): number[] {
  const byClass: number[][] = [[], []];
  for (let i = 0; i < v.values.length; i++) byClass[v.values[i] ? 1 : 0].push(i);
  const per = Math.min(byClass[0].length, byClass[1].length, Math.floor(maxRows / 2));
  return byClass
    .flatMap((c) =>
      rng
        .permutation(c.length)
        .slice(0, per)
        .map((k) => c[k]),
    )
    .sort((a, b) => a - b);
}

/** Indices into v.rows: at most maxSamples, class-balanced for binary variables. */
function subsample(v: TaskVariable, maxSamples: number, rng: Rng): number[] {
  const n = v.rows.length;
  if (v.kind === 'continuous')
    return rng
      .permutation(n)
      .slice(0, Math.min(n, maxSamples))
      .sort((a, b) => a - b);
  return balancedRows(v, maxSamples, rng);
}

const meanOf = (x: Float64Array) => {
  let s = 0;
  for (const v of x) s += v;
  return s / x.length;
};

/** R2 of predictions at resampled test rows (the statistic sees row indices). */
function r2At(y: Float64Array, pred: Float64Array) {
  return (idx: Float64Array) => {
    let m = 0;
    for (const i of idx) m += y[i];
    m /= idx.length;
    let sse = 0,
      sst = 0;
    for (const i of idx) {
      sse += (y[i] - pred[i]) ** 2;
      sst += (y[i] - m) ** 2;
    }
    return sst > 0 ? 1 - sse / sst : 0;
  };
}

/** Fits and scores one probe for variable `v` from features X (rows = all rows of the collection). */
export function evaluateProbe(X: Matrix, v: TaskVariable, rng: Rng, opts: ProbeEvalOptions = {}): ProbeEval {
  const {
    alpha = 1,
    folds = 5,
    maxSamples = 4000,
    testFraction = 0.3,
    nLambda = 20,
    lambdaRatio = 1e-2,
    nBoot = 1000,
    nPerm = 1000,
    tol = 1e-6,
    maxSweeps = 1000,
    maxOuter = 25,
  } = opts;
  const picked = subsample(v, maxSamples, rng.fork('subsample'));
  const nTest = Math.round(picked.length * testFraction),
    nTrain = picked.length - nTest;
  if (nTest < 4 || nTrain < 2 * folds)
    throw new Error(`evaluateProbe ${v.name}: ${picked.length} usable rows are too few for ${folds}-fold CV and a test split`);
  const order = rng.fork('split').permutation(picked.length);
  const trainIdx = order.slice(nTest),
    testIdx = order.slice(0, nTest);
  const Xtr = takeRows(
    X,
    trainIdx.map((i) => v.rows[picked[i]]),
  );
  const Xte = takeRows(
    X,
    testIdx.map((i) => v.rows[picked[i]]),
  );
  const ytr = Float64Array.from(trainIdx, (i) => v.values[picked[i]]);
  const yte = Float64Array.from(testIdx, (i) => v.values[picked[i]]);
  const shuffled = Float64Array.from(rng.fork('shuffle').permutation(nTrain), (k) => ytr[k]);
  const cv = { nFolds: folds, nLambda, lambdaRatio, alpha, tol, maxSweeps };

  if (v.kind === 'binary') {
    const fit = (y: Float64Array, r: Rng) => {
      const probe = logisticProbeCV(Xtr, Int32Array.from(y), r, { ...cv, maxOuter });
      const pred = predictLogistic(probe, Xte);
      return { probe, correct: Float64Array.from(yte, (t, i) => (pred[i] === t ? 1 : 0)) };
    };
    const real = fit(ytr, rng.fork('cv'));
    const ctrl = fit(shuffled, rng.fork('cv-control'));
    const ci = bootstrapCI(real.correct, rng.fork('boot'), meanOf, { nBoot, method: 'percentile' });
    const cci = bootstrapCI(ctrl.correct, rng.fork('boot-control'), meanOf, { nBoot, method: 'percentile' });
    const test = pairedPermutationTest(real.correct, ctrl.correct, rng.fork('perm'), { nPerm, alternative: 'greater' });
    const diff = bootstrapCI(
      Float64Array.from(real.correct, (c, i) => c - ctrl.correct[i]),
      rng.fork('boot-difference'),
      meanOf,
      { nBoot, method: 'percentile' },
    );
    const pos = meanOf(yte);
    return {
      kind: 'logistic',
      metric: 'accuracy',
      heldOut: ci.estimate,
      interval: [ci.lo, ci.hi],
      chance: Math.max(pos, 1 - pos),
      control: cci.estimate,
      controlInterval: [cci.lo, cci.hi],
      p: test.pValue,
      pFloor: test.floor,
      difference: diff.estimate,
      differenceInterval: [diff.lo, diff.hi],
      selected: real.probe.selected,
      coefficients: real.probe.selected.map((j) => real.probe.coef[0][j]),
      lambda: real.probe.lambda,
      nTrain,
      nTest,
    };
  }
  const fit = (y: Float64Array, r: Rng) => {
    const probe = linearProbeCV(Xtr, y, r, cv);
    return { probe, pred: predictLinear(probe, Xte) };
  };
  const real = fit(ytr, rng.fork('cv'));
  const ctrl = fit(shuffled, rng.fork('cv-control'));
  const idx = Float64Array.from({ length: nTest }, (_, i) => i);
  const ci = bootstrapCI(idx, rng.fork('boot'), r2At(yte, real.pred), { nBoot, method: 'percentile' });
  const cci = bootstrapCI(idx, rng.fork('boot-control'), r2At(yte, ctrl.pred), { nBoot, method: 'percentile' });
  const err = (pred: Float64Array) => Float64Array.from(yte, (t, i) => (t - pred[i]) ** 2);
  const test = pairedPermutationTest(err(ctrl.pred), err(real.pred), rng.fork('perm'), { nPerm, alternative: 'greater' });
  const r2Real = r2At(yte, real.pred),
    r2Ctrl = r2At(yte, ctrl.pred);
  const diff = bootstrapCI(idx, rng.fork('boot-difference'), (at) => r2Real(at) - r2Ctrl(at), { nBoot, method: 'percentile' });
  return {
    kind: alpha === 1 ? 'lasso' : 'elasticnet',
    metric: 'r2',
    heldOut: ci.estimate,
    interval: [ci.lo, ci.hi],
    chance: 0,
    control: cci.estimate,
    controlInterval: [cci.lo, cci.hi],
    p: test.pValue,
    pFloor: test.floor,
    difference: diff.estimate,
    differenceInterval: [diff.lo, diff.hi],
    selected: real.probe.selected,
    coefficients: real.probe.selected.map((j) => real.probe.coef[j]),
    lambda: real.probe.lambda,
    nTrain,
    nTest,
  };
}
