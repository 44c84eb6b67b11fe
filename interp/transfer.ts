// Cross-task transfer: does what was found on task A (an SAE, a probe, a circuit) work on task B?
//
//  - SAEs: A's SAE reconstructs B's activations of the same hook; per-row squared errors give FVU
//    and the transferred variance explained relative to B's own SAE, (1 - FVU_A→B) / (1 - FVU_B→B),
//    with a bootstrap over rows. Control: B's own SAE on B's activations with the channels shuffled
//    (same values, wrong basis), which says how much a basis that is not the SAE's own costs.
//  - Probes: one shared variable, "the answer token is in the upper half of the task's answer
//    range" (induction and selective copying: copyToken among the content/data tokens; MQAR: value
//    among the values), at the scored positions of both tasks. An L1 logistic probe fitted on A is
//    scored on B (class-balanced rows, chance 1/2) next to A's in-task held-out score and a
//    shuffled-label probe.
//  - Circuits: ablating A's channel set at the same hook on B's model, at B's own circuit positions,
//    next to B's own circuit and random channel sets of the same size (mean ablation).
import * as mi from '../engine/index.ts';
import type { Rng } from '../engine/random.ts';
import type { MambaLM } from '../mamba/model.ts';
import { ablate, ablationEdit, cacheActivations, evalSet, idsOf, outcome, positionMask, type PositionSpec } from './patching.ts';
import { balancedRows } from './probe-eval.ts';
import { logisticProbeCV, predictLogistic, type LogisticProbe, type Matrix } from './probes.ts';
import type { Sae } from './sae/sae.ts';
import { quantile } from './stats.ts';
import { getTask, type AnyTaskOptions, type TaskBatch } from './tasks/index.ts';

// ---------------------------------------------------------------------------------------------
// SAEs

export interface RowErrors {
  /** squared reconstruction error per row */
  err: Float64Array;
  /** squared distance of the row from the data's column means (FVU's denominator) */
  total: Float64Array;
  /** latents active per row */
  l0: Float64Array;
}

/** Per-row reconstruction errors of an SAE on activations [rows, d]. */
export async function saeRowErrors(sae: Sae, data: Float32Array, batchSize = 1024): Promise<RowErrors> {
  const d = sae.d,
    n = data.length / d;
  if (!Number.isInteger(n) || n === 0) throw new Error(`saeRowErrors: ${data.length} values are not rows of width ${d}`);
  const mean = new Float64Array(d);
  for (let i = 0; i < data.length; i++) mean[i % d] += data[i] / n;
  const out: RowErrors = { err: new Float64Array(n), total: new Float64Array(n), l0: new Float64Array(n) };
  for (let r0 = 0; r0 < n; r0 += batchSize) {
    const rows = Math.min(batchSize, n - r0);
    const chunk = data.subarray(r0 * d, (r0 + rows) * d);
    const [recon, z] = await mi.tidyAsync(async () => {
      const x = mi.tensor(chunk, [rows, d], { backend: sae.params.W_dec.backend });
      return [await sae.forward(x).data(), await sae.encode(x).data()];
    });
    for (let r = 0; r < rows; r++) {
      let e = 0,
        t = 0,
        a = 0;
      for (let j = 0; j < d; j++) {
        const x = chunk[r * d + j];
        e += (x - recon[r * d + j]) ** 2;
        t += (x - mean[j]) ** 2;
      }
      for (let l = 0; l < sae.latents; l++) if (z[r * sae.latents + l] > 0) a++;
      out.err[r0 + r] = e;
      out.total[r0 + r] = t;
      out.l0[r0 + r] = a;
    }
  }
  return out;
}

const sumAt = (x: Float64Array, idx: ArrayLike<number> | null) => {
  let s = 0;
  if (idx) for (let i = 0; i < idx.length; i++) s += x[idx[i]];
  else for (const v of x) s += v;
  return s;
};

/** Fraction of variance unexplained over the rows `idx` (all rows when null). */
export function fvuOf(e: RowErrors, idx: ArrayLike<number> | null = null): number {
  const t = sumAt(e.total, idx);
  return t > 0 ? sumAt(e.err, idx) / t : NaN;
}

export interface Estimate {
  estimate: number;
  interval: [number, number];
}

/**
 * A statistic of row indices, with a percentile bootstrap over rows (or over groups of rows, e.g.
 * sequences, when `groupOf` is given: whole groups are resampled).
 */
export function bootstrapRows(
  n: number,
  stat: (idx: ArrayLike<number> | null) => number,
  rng: Rng,
  nBoot: number,
  groupOf?: ArrayLike<number>,
): Estimate {
  const estimate = stat(null);
  if (!Number.isFinite(estimate)) return { estimate, interval: [NaN, NaN] };
  const groups: number[][] = [];
  if (groupOf) {
    for (let r = 0; r < n; r++) {
      groups[groupOf[r]] ??= [];
      groups[groupOf[r]].push(r);
    }
  }
  const g = groups.filter(Boolean);
  const reps = new Float64Array(nBoot);
  for (let b = 0; b < nBoot; b++) {
    let idx: number[];
    if (groupOf) {
      idx = [];
      for (let k = 0; k < g.length; k++) idx.push(...g[rng.int(0, g.length)]);
    } else idx = Array.from({ length: n }, () => rng.int(0, n));
    reps[b] = stat(idx);
  }
  const s = reps.filter(Number.isFinite).sort();
  return { estimate, interval: s.length ? [quantile(s, 0.025, true), quantile(s, 0.975, true)] : [NaN, NaN] };
}

/** Activations [rows, d] with their channels reordered by `perm` (new channel j = old perm[j]). */
export function permuteChannels(data: Float32Array, d: number, perm: readonly number[]): Float32Array {
  if (perm.length !== d) throw new Error(`permuteChannels: permutation of ${perm.length} for width ${d}`);
  const out = new Float32Array(data.length);
  for (let r = 0; r < data.length / d; r++) for (let j = 0; j < d; j++) out[r * d + j] = data[r * d + perm[j]];
  return out;
}

export interface SaeTransfer {
  fvuOwn: number;
  fvuTransfer: number;
  fvuControl: number;
  l0Own: number;
  l0Transfer: number;
  /** (1 - fvuTransfer) / (1 - fvuOwn), and the same for the control, with bootstrap intervals over rows */
  ratio: Estimate;
  controlRatio: Estimate;
}

/** A's SAE on B's activations vs B's own SAE (see the header); `rowGroup` resamples whole sequences. */
export async function saeTransfer(
  saeA: Sae,
  saeB: Sae,
  actsB: Float32Array,
  rng: Rng,
  nBoot: number,
  rowGroup?: ArrayLike<number>,
): Promise<SaeTransfer> {
  if (saeA.d !== saeB.d) throw new Error(`saeTransfer: SAE widths differ (${saeA.d} vs ${saeB.d})`);
  const own = await saeRowErrors(saeB, actsB);
  const tr = await saeRowErrors(saeA, actsB);
  const ctl = await saeRowErrors(saeB, permuteChannels(actsB, saeB.d, rng.fork('perm').permutation(saeB.d)));
  const n = own.err.length;
  const ve = (e: RowErrors, idx: ArrayLike<number> | null) => 1 - fvuOf(e, idx);
  const mean = (x: Float64Array) => sumAt(x, null) / x.length;
  return {
    fvuOwn: fvuOf(own),
    fvuTransfer: fvuOf(tr),
    fvuControl: fvuOf(ctl),
    l0Own: mean(own.l0),
    l0Transfer: mean(tr.l0),
    ratio: bootstrapRows(n, (idx) => ve(tr, idx) / ve(own, idx), rng.fork('boot'), nBoot, rowGroup),
    controlRatio: bootstrapRows(n, (idx) => ve(ctl, idx) / ve(own, idx), rng.fork('boot-control'), nBoot, rowGroup),
  };
}

// ---------------------------------------------------------------------------------------------
// Probes

/** The label holding each task's answer token, and the vocabulary range the answers come from. */
const ANSWER: Record<string, { label: string; vocab: string }> = {
  induction: { label: 'copyToken', vocab: 'content' },
  'selective-copying': { label: 'copyToken', vocab: 'data' },
  mqar: { label: 'value', vocab: 'values' },
};

export interface SharedVariable {
  name: string;
  rows: Int32Array;
  values: Float64Array;
  cut: number;
}

/**
 * The shared variable at the scored positions of a task's labels ([batch*T]): 1 when the answer
 * token is in the upper half [cut, last] of the task's answer range, else 0.
 */
export function answerUpperHalf(
  taskName: string,
  taskOptions: Record<string, number>,
  labels: Record<string, ArrayLike<number>>,
): SharedVariable {
  const spec = ANSWER[taskName];
  if (!spec) throw new Error(`answerUpperHalf: no answer variable defined for task '${taskName}' (have ${Object.keys(ANSWER).join(', ')})`);
  const entry = getTask(taskName)
    .vocabulary(taskOptions as unknown as AnyTaskOptions)
    .find((v) => v.name === spec.vocab);
  if (!entry) throw new Error(`answerUpperHalf: task '${taskName}' has no vocabulary entry '${spec.vocab}'`);
  const lab = labels[spec.label];
  if (!lab) throw new Error(`answerUpperHalf: labels of '${taskName}' have no '${spec.label}'`);
  const cut = Math.ceil((entry.first + entry.last + 1) / 2);
  const rows: number[] = [];
  for (let r = 0; r < lab.length; r++) if (lab[r] >= 0) rows.push(r);
  return {
    name: `${spec.label}>=${cut}`,
    rows: Int32Array.from(rows),
    values: Float64Array.from(rows, (r) => (lab[r] >= cut ? 1 : 0)),
    cut,
  };
}

function rowsOf(acts: Float32Array, d: number, rows: ArrayLike<number>): Matrix {
  const data = new Float64Array(rows.length * d);
  for (let i = 0; i < rows.length; i++) for (let j = 0; j < d; j++) data[i * d + j] = acts[rows[i] * d + j];
  return { data, rows: rows.length, cols: d };
}

export interface ProbeSource {
  acts: Float32Array;
  d: number;
  variable: SharedVariable;
}

export interface ProbeOptions {
  maxRows: number;
  folds: number;
  nLambda: number;
  nBoot: number;
  testFraction?: number;
}

/** A probe of A's variable and its shuffled-label control, with A's held-out score. */
export interface FittedProbe {
  source: ProbeSource;
  probe: LogisticProbe;
  control: LogisticProbe;
  /** A's probe on A's held-out rows */
  inTask: Estimate;
  nTrain: number;
  nTestA: number;
}

export interface ProbeScore {
  /** the probe on B's rows, and the shuffled-label probe there */
  transfer: Estimate;
  control: Estimate;
  /** per B row: 1 when the probe / control is right (paired, for a test) */
  correct: Float64Array;
  controlCorrect: Float64Array;
  chance: number;
  nTestB: number;
}

const meanAt = (x: Float64Array) => (idx: ArrayLike<number> | null) => (idx ? sumAt(x, idx) / idx.length : sumAt(x, null) / x.length);

function correctAt(p: LogisticProbe, src: ProbeSource, idx: number[]): Float64Array {
  const pred = predictLogistic(
    p,
    rowsOf(
      src.acts,
      src.d,
      idx.map((i) => src.variable.rows[i]),
    ),
  );
  return Float64Array.from(idx, (i, k) => (pred[k] === src.variable.values[i] ? 1 : 0));
}

/**
 * An L1 logistic probe (lambda by k-fold CV) fitted on A's class-balanced training rows, a
 * shuffled-label control fitted on the same rows, and A's held-out score. Fit once, score on every B.
 */
export function fitTransferProbe(a: ProbeSource, rng: Rng, opts: ProbeOptions): FittedProbe {
  const pickA = balancedRows(a.variable, opts.maxRows, rng.fork('rows-a'));
  const nTestA = Math.round(pickA.length * (opts.testFraction ?? 0.3));
  if (nTestA < 4 || pickA.length - nTestA < 2 * opts.folds) {
    throw new Error(
      `fitTransferProbe ${a.variable.name}: ${pickA.length} balanced rows are too few for ${opts.folds}-fold CV and a test split`,
    );
  }
  const order = rng.fork('split').permutation(pickA.length);
  const train = order.slice(nTestA).map((i) => pickA[i]),
    testA = order.slice(0, nTestA).map((i) => pickA[i]);
  const Xtr = rowsOf(
    a.acts,
    a.d,
    train.map((i) => a.variable.rows[i]),
  );
  const ytr = Int32Array.from(train, (i) => a.variable.values[i]);
  const shuffled = Int32Array.from(rng.fork('shuffle').permutation(ytr.length), (k) => ytr[k]);
  // a probe that reads one bit needs a good fit, not the last digit
  const cv = { nFolds: opts.folds, nLambda: opts.nLambda, tol: 1e-4, maxSweeps: 300, maxOuter: 15 };
  const probe = logisticProbeCV(Xtr, ytr, rng.fork('cv'), cv);
  const control = logisticProbeCV(Xtr, shuffled, rng.fork('cv-control'), cv);
  const cA = correctAt(probe, a, testA);
  return {
    source: a,
    probe,
    control,
    inTask: bootstrapRows(cA.length, meanAt(cA), rng.fork('boot-a'), opts.nBoot),
    nTrain: train.length,
    nTestA,
  };
}

/** A fitted probe scored on B's class-balanced rows (chance 1/2), next to its shuffled-label control. */
export function scoreTransferProbe(fit: FittedProbe, b: ProbeSource, rng: Rng, opts: ProbeOptions): ProbeScore {
  if (fit.source.d !== b.d) throw new Error(`scoreTransferProbe: activation widths differ (${fit.source.d} vs ${b.d})`);
  const pickB = balancedRows(b.variable, opts.maxRows, rng.fork('rows-b'));
  if (pickB.length < 4) throw new Error(`scoreTransferProbe ${b.variable.name}: ${pickB.length} balanced rows are too few`);
  const cB = correctAt(fit.probe, b, pickB),
    cC = correctAt(fit.control, b, pickB);
  return {
    transfer: bootstrapRows(cB.length, meanAt(cB), rng.fork('boot-b'), opts.nBoot),
    control: bootstrapRows(cC.length, meanAt(cC), rng.fork('boot-c'), opts.nBoot),
    correct: cB,
    controlCorrect: cC,
    chance: 0.5,
    nTestB: pickB.length,
  };
}

// ---------------------------------------------------------------------------------------------
// Circuits

/**
 * Per example of `batch`, the accuracy drop when each channel set is mean-ablated at `hook` on the
 * cells of `positions` (one model pass per set, plus the clean pass).
 */
export async function channelAblationDrops(
  model: MambaLM,
  batch: TaskBatch,
  hook: string,
  positions: PositionSpec,
  channelSets: readonly number[][],
): Promise<Float64Array[]> {
  const ids = idsOf(model, batch);
  const clean = cacheActivations(model, ids, [hook]);
  try {
    const set = evalSet(batch);
    const base = await outcome(model, ids, set, []);
    const mask = positionMask(positions, batch);
    const edit = await ablationEdit('mean', clean.get(hook)!, mask);
    const out: Float64Array[] = [];
    for (const channels of channelSets) {
      out.push((await ablate(model, ids, set, base, { hook, channels }, mask, edit)).accuracyDrop);
    }
    return out;
  } finally {
    ids.dispose();
    for (const t of clean.values()) t.dispose();
  }
}
