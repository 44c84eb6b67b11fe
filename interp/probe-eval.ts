// A sparse probe judged on sequences it never saw, next to a control task and baseline features.
//
// The rows where the variable is defined are subsampled (binary variables class-balanced, so
// chance is 1/2 and a rare indicator like "is the trigger" cannot score by always saying no), then
// split into train and test BY SEQUENCE (seeded): every row of a sequence falls on one side, and the
// probe's lambda is chosen by k-fold CV grouped by sequence on the training rows (interp/probes.ts).
// A row split would put rows of one sequence on both sides, and many variables are shared by the
// rows of a sequence (induction's copied token at every scored trigger; MQAR's values), so a probe
// could score by recognising the sequence rather than reading the variable.
// The probe (L1 logistic, or Lasso / ElasticNet) is scored on the test rows next to
//  - a control task (Hewitt & Liang 2019): each type -- here the pair (current token, position),
//    the two things a representation trivially carries -- gets a random label drawn from the
//    variable's own label distribution; the same probe fitted and scored on it says how much a probe
//    of this capacity reads from memorising types. selectivity = score - control-task score;
//  - baselines: the same probe (same rows, split, folds) on other features of the same rows, e.g.
//    the embeddings and the same hook of a random-init model of the same shape.
// Inference is by sequence too, since the rows of a sequence are not independent (they share its
// label as often as not): intervals resample whole test sequences, and every comparison is paired --
// a bootstrap interval of the difference (the same resampled sequences for both) and a one-sided
// sign-flip test that flips whole sequences (the per-sequence sums of the per-row score differences,
// correct or -squared error).
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
  /** fraction of the rows held out for testing (default 0.3), reached by whole sequences */
  testFraction?: number;
  nLambda?: number;
  lambdaRatio?: number;
  nBoot?: number;
  /** sign flips of each comparison's test; nPermFor overrides it per comparison ('control-task' or a baseline's name) */
  nPerm?: number;
  nPermFor?: Record<string, number>;
  /** coordinate-descent convergence threshold and sweep cap per lambda (defaults 1e-6, 1000: a
   *  probe needs a good fit, not the last digit, and nearly collinear activations converge slowly) */
  tol?: number;
  maxSweeps?: number;
  /** logistic: IRLS iterations per lambda (default 25; separable classes otherwise use them all) */
  maxOuter?: number;
}

/** The probe against one other score on the same test rows: probe minus it, paired. */
export interface ProbeComparison {
  /** 'control-task', or the baseline's name */
  against: string;
  /** the other probe's test score and interval (resampling test sequences) */
  score: number;
  interval: [number, number];
  /** probe minus it, with a paired bootstrap interval over the test rows */
  difference: number;
  differenceInterval: [number, number];
  /** one-sided paired sign-flip p (probe better; whole test sequences flipped) and its floor */
  p: number;
  pFloor: number;
}

export interface ProbeEval {
  kind: 'logistic' | 'lasso' | 'elasticnet';
  metric: 'accuracy' | 'r2';
  /** test accuracy or R2, and its interval resampling test sequences */
  heldOut: number;
  interval: [number, number];
  /** accuracy of the majority class of the test rows (binary), 0 for R2 */
  chance: number;
  /** the control task's probe (Hewitt & Liang): its test score; selectivity = heldOut - control */
  control: ProbeComparison;
  /** the same probe on each baseline's features */
  baselines: ProbeComparison[];
  /** nonzero dimensions and their coefficients (original units) */
  selected: number[];
  coefficients: number[];
  lambda: number;
  nTrain: number;
  nTest: number;
  /** distinct sequences on each side (disjoint) */
  trainSequences: number;
  testSequences: number;
  /** per training row: its sequence and the probe's CV fold (every sequence in one fold) */
  trainRowSequence: Int32Array;
  cvFolds: Int32Array;
  /** the sequence of each test row, for checks that no test sequence was trained on */
  testSequenceIds: number[];
  trainSequenceIds: number[];
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

/**
 * Splits the picked rows (indices into v's rows) by sequence: sequences in a seeded order go to the
 * test side until it holds at least testFraction of the rows. Returns positions into `picked`.
 */
export function groupedSplit(
  sequenceOf: ArrayLike<number>,
  testFraction: number,
  rng: Rng,
): { train: number[]; test: number[]; trainSequences: number[]; testSequences: number[] } {
  const bySeq = new Map<number, number[]>();
  for (let i = 0; i < sequenceOf.length; i++) {
    const s = sequenceOf[i];
    const m = bySeq.get(s);
    if (m) m.push(i);
    else bySeq.set(s, [i]);
  }
  const ids = [...bySeq.keys()].sort((a, b) => a - b);
  const want = Math.round(sequenceOf.length * testFraction);
  const test: number[] = [],
    testSequences: number[] = [];
  const order = rng.permutation(ids.length);
  let k = 0;
  // keep at least one sequence for training
  while (test.length < want && k < order.length - 1) {
    const s = ids[order[k++]];
    testSequences.push(s);
    test.push(...bySeq.get(s)!);
  }
  const trainSequences = order.slice(k).map((o) => ids[o]);
  const train = trainSequences.flatMap((s) => bySeq.get(s)!);
  return { train: train.sort((a, b) => a - b), test: test.sort((a, b) => a - b), trainSequences, testSequences };
}

/**
 * Control-task labels (Hewitt & Liang 2019): each distinct type gets one label drawn from `values`
 * (uniformly, with replacement: the variable's own label distribution), and every row of that type
 * takes it. Types are keyed on the given per-row keys (e.g. token and position).
 */
export function controlTaskLabels(keys: ArrayLike<number>[], values: ArrayLike<number>, rng: Rng): Float64Array {
  const n = values.length,
    out = new Float64Array(n),
    byType = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const type = keys.map((k) => k[i]).join(',');
    let lab = byType.get(type);
    if (lab === undefined) {
      lab = values[rng.int(0, n)];
      byType.set(type, lab);
    }
    out[i] = lab;
  }
  return out;
}

const mean = (xs: Float64Array) => {
  let s = 0;
  for (const v of xs) s += v;
  return s / xs.length;
};

/** A fitted probe's test-row scores: `perRow` (correct, or -squared error) for the sign-flip test, `at` the score of resampled rows. */
interface Scored {
  perRow: Float64Array;
  at: (idx: Float64Array) => number;
}

function scoredBinary(yte: Float64Array, pred: Int32Array): Scored {
  const correct = Float64Array.from(yte, (t, i) => (pred[i] === t ? 1 : 0));
  return {
    perRow: correct,
    at: (idx) => {
      let s = 0;
      for (const i of idx) s += correct[i];
      return s / idx.length;
    },
  };
}

function scoredContinuous(yte: Float64Array, pred: Float64Array): Scored {
  return {
    perRow: Float64Array.from(yte, (t, i) => -((t - pred[i]) ** 2)),
    at: (idx) => {
      let m = 0;
      for (const i of idx) m += yte[i];
      m /= idx.length;
      let sse = 0,
        sst = 0;
      for (const i of idx) {
        sse += (yte[i] - pred[i]) ** 2;
        sst += (yte[i] - m) ** 2;
      }
      return sst > 0 ? 1 - sse / sst : 0;
    },
  };
}

/**
 * Fits and scores one probe for variable `v` from features X (rows = all rows of the collection).
 * `v.sequence` is required (the split and folds keep sequences whole), and `v.token` and `v.position`
 * (the control task's types). Each baseline's X has the same rows as X (any number of columns).
 */
export function evaluateProbe(
  X: Matrix,
  v: TaskVariable,
  rng: Rng,
  opts: ProbeEvalOptions = {},
  baselines: { name: string; X: Matrix }[] = [],
): ProbeEval {
  const {
    alpha = 1,
    folds = 5,
    maxSamples = 4000,
    testFraction = 0.3,
    nLambda = 20,
    lambdaRatio = 1e-2,
    nBoot = 1000,
    nPerm = 1000,
    nPermFor = {},
    tol = 1e-6,
    maxSweeps = 1000,
    maxOuter = 25,
  } = opts;
  if (!v.sequence || !v.position || !v.token)
    throw new Error(
      `evaluateProbe ${v.name}: the variable needs sequence, position and token per row (taskVariables with seqLen and inputs)`,
    );
  for (const b of baselines)
    if (b.X.rows !== X.rows) throw new Error(`evaluateProbe ${v.name}: baseline ${b.name} has ${b.X.rows} rows, the features ${X.rows}`);
  const picked = subsample(v, maxSamples, rng.fork('subsample'));
  const seqOf = picked.map((i) => v.sequence![i]);
  const split = groupedSplit(seqOf, testFraction, rng.fork('split'));
  const nTest = split.test.length,
    nTrain = split.train.length;
  if (nTest < 4 || split.trainSequences.length < folds)
    throw new Error(
      `evaluateProbe ${v.name}: ${picked.length} usable rows in ${new Set(seqOf).size} sequences are too few for ${folds}-fold grouped CV and a test split`,
    );
  const rowsOf = (side: number[]) => side.map((i) => v.rows[picked[i]]);
  const trainRows = rowsOf(split.train),
    testRows = rowsOf(split.test);
  const ytr = Float64Array.from(split.train, (i) => v.values[picked[i]]);
  const yte = Float64Array.from(split.test, (i) => v.values[picked[i]]);
  const groups = Int32Array.from(split.train, (i) => seqOf[i]);
  const cv = { nFolds: folds, nLambda, lambdaRatio, alpha, tol, maxSweeps, groups };

  // the control task over the picked rows (train and test share the type -> label map: it is a property of the type)
  const pickedValues = Float64Array.from(picked, (i) => v.values[i]);
  const keys = [Int32Array.from(picked, (i) => v.token![i]), Int32Array.from(picked, (i) => v.position![i])];
  let ctrl = controlTaskLabels(keys, pickedValues, rng.fork('control-task'));
  // a binary control task must have both classes among the training rows (few types can draw one class)
  for (let t = 1; v.kind === 'binary' && t < 20 && new Set(split.train.map((i) => ctrl[i])).size < 2; t++)
    ctrl = controlTaskLabels(keys, pickedValues, rng.fork(`control-task-${t}`));
  const ctrlTr = Float64Array.from(split.train, (i) => ctrl[i]),
    ctrlTe = Float64Array.from(split.test, (i) => ctrl[i]);

  const fitOn = (F: Matrix, y: Float64Array, target: Float64Array, r: Rng) => {
    const Ftr = takeRows(F, trainRows),
      Fte = takeRows(F, testRows);
    if (v.kind === 'binary') {
      const probe = logisticProbeCV(Ftr, Int32Array.from(y), r, { ...cv, maxOuter });
      return {
        scored: scoredBinary(target, predictLogistic(probe, Fte)),
        selected: probe.selected,
        coef: probe.coef[0],
        lambda: probe.lambda,
        folds: probe.cv.folds,
      };
    }
    const probe = linearProbeCV(Ftr, y, r, cv);
    return {
      scored: scoredContinuous(target, predictLinear(probe, Fte)),
      selected: probe.selected,
      coef: probe.coef,
      lambda: probe.lambda,
      folds: probe.cv.folds,
    };
  };
  // one CV stream for every fit: the probe, the control task and each baseline get the same folds
  const real = fitOn(X, ytr, yte, rng.fork('cv'));
  // the test rows of each test sequence: the unit that intervals resample and sign flips flip
  const clusterOf = new Map<number, number[]>();
  split.test.forEach((i, k) => {
    const c = clusterOf.get(seqOf[i]);
    if (c) c.push(k);
    else clusterOf.set(seqOf[i], [k]);
  });
  const clusters = [...clusterOf.values()];
  const units = Float64Array.from(clusters, (_, c) => c);
  const rowsAt = (cs: Float64Array) => Float64Array.from(Array.from(cs).flatMap((c) => clusters[c]));
  const bySequence = (stat: (idx: Float64Array) => number) => (cs: Float64Array) => stat(rowsAt(cs));
  const sums = (perRow: Float64Array) => Float64Array.from(clusters, (rows) => rows.reduce((a, k) => a + perRow[k], 0));
  const ci = bootstrapCI(units, rng.fork('boot'), bySequence(real.scored.at), { nBoot, method: 'percentile' });
  const compare = (against: string, other: Scored): ProbeComparison => {
    const oci = bootstrapCI(units, rng.fork(`boot/${against}`), bySequence(other.at), { nBoot, method: 'percentile' });
    const diff = bootstrapCI(
      units,
      rng.fork(`boot-difference/${against}`),
      bySequence((at) => real.scored.at(at) - other.at(at)),
      {
        nBoot,
        method: 'percentile',
      },
    );
    const test = pairedPermutationTest(sums(real.scored.perRow), sums(other.perRow), rng.fork(`perm/${against}`), {
      nPerm: nPermFor[against] ?? nPerm,
      alternative: 'greater',
    });
    return {
      against,
      score: oci.estimate,
      interval: [oci.lo, oci.hi],
      difference: diff.estimate,
      differenceInterval: [diff.lo, diff.hi],
      p: test.pValue,
      pFloor: test.floor,
    };
  };
  const control = compare('control-task', fitOn(X, ctrlTr, ctrlTe, rng.fork('cv')).scored);
  const base = baselines.map((b) => compare(b.name, fitOn(b.X, ytr, yte, rng.fork('cv')).scored));
  const pos = mean(yte);
  return {
    kind: v.kind === 'binary' ? 'logistic' : alpha === 1 ? 'lasso' : 'elasticnet',
    metric: v.kind === 'binary' ? 'accuracy' : 'r2',
    heldOut: ci.estimate,
    interval: [ci.lo, ci.hi],
    chance: v.kind === 'binary' ? Math.max(pos, 1 - pos) : 0,
    control,
    baselines: base,
    selected: real.selected,
    coefficients: real.selected.map((j) => real.coef[j]),
    lambda: real.lambda,
    nTrain,
    nTest,
    trainRowSequence: groups,
    cvFolds: real.folds,
    trainSequences: split.trainSequences.length,
    testSequences: split.testSequences.length,
    trainSequenceIds: [...split.trainSequences].sort((a, b) => a - b),
    testSequenceIds: [...split.testSequences].sort((a, b) => a - b),
  };
}
