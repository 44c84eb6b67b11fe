// A circuit of one model tested in another by function: located there by activation correlation,
// then patched there (clean into corrupted at the last residual output), against matched control
// sets of the first model located and patched the same way.
//
//  - lastResidualPatch: what a clean patch at the last layer's residual output needs from a model
//    on one clean/corrupted batch pair, read out once. After that hook only the final RMSNorm and
//    the LM head follow, both per position (patching.ts isLastResidual), so the logit difference
//    at a scored cell after replacing channels C of the corrupted residual r by the clean one c is
//        ld = u . r' / sqrt(|r'|^2 / d + eps),   u = g * (W[answer] - W[alternative]),
//    and u . r' and |r'|^2 move by sums over C only: O(|C|) a cell instead of a forward. That makes
//    the thousands of control sets an intersection-union p over seed pairs needs affordable (its
//    floor is one pair's 1/(n+1), so n has to be large for the floor to survive the run's Holm).
//    The same arithmetic as patchCleanMany (step 6's measure); the step checks the two agree.
//  - locatedPatchTest: the located circuit's fraction restored against its located controls' (the
//    empirical rank p-value, floor 1/(m+1) for m distinct control sets), with a bootstrap over
//    sequences.
import type { Rng } from '../engine/random.ts';
import type { MambaLM } from '../mamba/model.ts';
import { CONTROL_QUANTILES, rankPValue } from './controls.ts';
import { cacheActivations, perExample, type EvalSet } from './patching.ts';
import { locateOneToOne } from './similarity.ts';
import { quantile } from './stats.ts';

/** One model's clean patch at its last residual output on one batch pair, at the scored cells. */
export interface LastResidualPatch {
  /** residual width */
  d: number;
  /** the clean and corrupted residual at each scored cell [cells, d] */
  clean: Float64Array;
  corrupt: Float64Array;
  /** g * (W[answer] - W[alternative]) per scored cell [cells, d] */
  u: Float64Array;
  eps: number;
  /** whether the site's mask covers the cell (a patch elsewhere cannot reach the scored logits) */
  covered: Uint8Array;
  /** u . corrupt and |corrupt|^2 per cell, and the corrupted logit difference per cell */
  corruptDot: Float64Array;
  corruptSq: Float64Array;
  corruptLdCell: Float64Array;
  set: EvalSet;
  /** per example: clean minus corrupted logit difference (the denominator of fraction restored) */
  gap: Float64Array;
}

/**
 * Reads what patchGained needs from `model`: its last residual on the clean and the corrupted ids
 * at the set's scored cells, the final norm's weight and the head's rows of each cell's answer and
 * alternative. `set` = evalSet(clean, corrupted); `mask` the site's cells [batch*T].
 */
export async function lastResidualPatch(
  model: MambaLM,
  cleanIds: Parameters<typeof cacheActivations>[1],
  corruptIds: Parameters<typeof cacheActivations>[1],
  set: EvalSet,
  mask: Uint8Array,
): Promise<LastResidualPatch> {
  if (!set.alt) throw new Error('lastResidualPatch: the set needs the corrupted answers as alternatives (evalSet(clean, corrupted))');
  const [B, T] = set.batch.shape;
  if (mask.length !== B * T) throw new Error(`lastResidualPatch: mask of ${mask.length} cells for a batch of ${B * T}`);
  const c = model.config;
  const d = c.hidden_size,
    V = c.vocab_size;
  const hook = `blocks.${c.num_hidden_layers - 1}.hook_resid_post`;
  const read = async (ids: typeof cleanIds) => {
    const act = cacheActivations(model, ids, [hook]).get(hook)!;
    try {
      return await act.data();
    } finally {
      act.dispose();
    }
  };
  const [cleanAll, corruptAll] = [await read(cleanIds), await read(corruptIds)];
  const g = await model.p('backbone.norm_f.weight').data();
  const W = await model.lmHead().data();
  const S = set.rows.length;
  const clean = new Float64Array(S * d),
    corrupt = new Float64Array(S * d),
    u = new Float64Array(S * d);
  const covered = new Uint8Array(S);
  for (let i = 0; i < S; i++) {
    const r = set.rows[i];
    covered[i] = mask[r];
    const a = set.answer[i],
      b = set.alt[i];
    if (a >= V || b >= V) throw new Error(`lastResidualPatch: answer ${a} or alternative ${b} is outside the vocabulary of ${V}`);
    for (let j = 0; j < d; j++) {
      clean[i * d + j] = cleanAll[r * d + j];
      corrupt[i * d + j] = corruptAll[r * d + j];
      u[i * d + j] = g[j] * (W[a * d + j] - W[b * d + j]);
    }
  }
  const eps = c.layer_norm_epsilon;
  const corruptDot = new Float64Array(S),
    corruptSq = new Float64Array(S),
    corruptLdCell = new Float64Array(S),
    cleanLdCell = new Float64Array(S);
  for (let i = 0; i < S; i++) {
    let dot = 0,
      sq = 0,
      cdot = 0,
      csq = 0;
    for (let j = 0; j < d; j++) {
      const x = corrupt[i * d + j],
        y = clean[i * d + j];
      dot += u[i * d + j] * x;
      sq += x * x;
      cdot += u[i * d + j] * y;
      csq += y * y;
    }
    corruptDot[i] = dot;
    corruptSq[i] = sq;
    corruptLdCell[i] = dot / Math.sqrt(sq / d + eps);
    cleanLdCell[i] = cdot / Math.sqrt(csq / d + eps);
  }
  const cleanLd = perExample(set, cleanLdCell),
    corruptLd = perExample(set, corruptLdCell);
  const gap = cleanLd.map((v, e) => v - corruptLd[e]);
  return { d, clean, corrupt, u, eps, covered, corruptDot, corruptSq, corruptLdCell, set, gap };
}

/**
 * Per example, the logit difference gained over the corrupted run when `channels` of the last
 * residual take their clean values at the covered cells: patchCleanMany's `gained` for a channel
 * site at the last residual.
 */
export function patchGained(p: LastResidualPatch, channels: readonly number[]): Float64Array {
  const { d } = p;
  for (const j of channels)
    if (!(Number.isInteger(j) && j >= 0 && j < d)) throw new Error(`patchGained: channel ${j} is outside [0, ${d})`);
  const S = p.covered.length;
  const cell = new Float64Array(S);
  for (let i = 0; i < S; i++) {
    if (!p.covered[i]) continue;
    let dot = p.corruptDot[i],
      sq = p.corruptSq[i];
    const o = i * d;
    for (const j of channels) {
      const x = p.corrupt[o + j],
        y = p.clean[o + j];
      dot += p.u[o + j] * (y - x);
      sq += y * y - x * x;
    }
    cell[i] = dot / Math.sqrt(Math.max(sq, 0) / d + p.eps) - p.corruptLdCell[i];
  }
  return perExample(p.set, cell);
}

/** A located circuit's fraction restored against its located controls'. */
export interface LocatedTest {
  /** the circuit's fraction restored and its bootstrap interval over sequences */
  estimate: number;
  interval: [number, number];
  /** the mean over control sets, and the 2.5-97.5% quantiles of the sets' effects (their spread) */
  control: number;
  controlInterval: [number, number];
  controlQuantiles: number[];
  /** the control sets' effects at 1, 2, ..., 99 % (their distribution, for a figure) */
  percentiles: number[];
  /** circuit minus mean control, with its bootstrap interval over sequences */
  difference: number;
  differenceInterval: [number, number];
  /**
   * rank p-value (1 + #controls >= circuit) / (1 + n), held at or above its floor 1/(m+1), where m
   * is the number of distinct control sets (m <= n); n
   */
  p: number;
  pFloor: number;
  controls: number;
  distinctControls: number;
}

/** sum(x[idx]) / sum(gap[idx]): fraction restored, a ratio of means over the (resampled) sequences. */
function ratioOn(x: ArrayLike<number>, gap: ArrayLike<number>, idx: Int32Array | null): number {
  let s = 0,
    g = 0;
  const n = idx ? idx.length : x.length;
  for (let i = 0; i < n; i++) {
    const e = idx ? idx[i] : i;
    s += x[e];
    g += gap[e];
  }
  return g === 0 ? 0 : s / g;
}

/**
 * `circuit`: per-example gained of the located circuit; `controls`: each control set's, in turn
 * (an iterable, so thousands need not be held at once); `gap`: per-example denominators. Every set
 * shares the denominator, so the mean over control sets on resampled sequences is the ratio of the
 * per-example mean gained, and the bootstrap over sequences needs no pass over the sets (with
 * thousands of sets, resampling them too, as controlTest does for 100, would change nothing).
 */
export function locatedPatchTest(
  circuit: ArrayLike<number>,
  controls: Iterable<ArrayLike<number>>,
  gap: ArrayLike<number>,
  rng: Rng,
  o: { bootstrap: number; level?: number; distinctControls?: number },
): LocatedTest {
  const E = circuit.length;
  if (E < 2) throw new Error(`locatedPatchTest: ${E} sequences; the bootstrap needs at least 2`);
  if (gap.length !== E) throw new Error(`locatedPatchTest: gap has ${gap.length} sequences, the circuit ${E}`);
  if (!Number.isInteger(o.bootstrap) || o.bootstrap < 1)
    throw new Error(`locatedPatchTest: bootstrap must be a positive integer, got ${o.bootstrap}`);
  const effects: number[] = [];
  const meanGained = new Float64Array(E);
  for (const c of controls) {
    if (c.length !== E) throw new Error(`locatedPatchTest: control ${effects.length} has ${c.length} sequences, the circuit ${E}`);
    effects.push(ratioOn(c, gap, null));
    for (let e = 0; e < E; e++) meanGained[e] += c[e];
  }
  const n = effects.length;
  if (!n) throw new Error('locatedPatchTest: no controls');
  for (let e = 0; e < E; e++) meanGained[e] /= n;
  const estimate = ratioOn(circuit, gap, null);
  const control = effects.reduce((s, v) => s + v, 0) / n;
  const diffGained = Float64Array.from(circuit, (v, e) => v - meanGained[e]);
  const circB = new Float64Array(o.bootstrap),
    diffB = new Float64Array(o.bootstrap);
  const idx = new Int32Array(E);
  for (let b = 0; b < o.bootstrap; b++) {
    for (let i = 0; i < E; i++) idx[i] = rng.int(0, E);
    circB[b] = ratioOn(circuit, gap, idx);
    diffB[b] = ratioOn(diffGained, gap, idx);
  }
  // a matched-control design can leave few sets to draw from (a circuit holding a whole variance
  // stratum forces its controls' channels there): n copies of m sets are no better than m, so the
  // p-value stays at or above 1/(m+1) and no duplicate draw makes it smaller
  const m = Math.min(n, o.distinctControls ?? n);
  if (!(Number.isInteger(m) && m >= 1))
    throw new Error(`locatedPatchTest: distinctControls must be a positive integer, got ${o.distinctControls}`);
  const pFloor = 1 / (m + 1);
  const level = o.level ?? 0.95;
  const lo = (1 - level) / 2,
    hi = 1 - lo;
  circB.sort();
  diffB.sort();
  const sortedCtl = Float64Array.from(effects).sort();
  return {
    estimate,
    interval: [quantile(circB, lo, true), quantile(circB, hi, true)],
    control,
    controlInterval: [quantile(sortedCtl, 0.025, true), quantile(sortedCtl, 0.975, true)],
    controlQuantiles: CONTROL_QUANTILES.map((q) => quantile(sortedCtl, q, true)),
    percentiles: Array.from({ length: 99 }, (_, k) => quantile(sortedCtl, (k + 1) / 100, true)),
    difference: estimate - control,
    differenceInterval: [quantile(diffB, lo, true), quantile(diffB, hi, true)],
    p: Math.max(rankPValue(estimate, effects), pFloor),
    pFloor,
    controls: n,
    distinctControls: m,
  };
}

/** How many different channel sets `sets` holds (order within a set aside). */
export function distinctSets(sets: readonly (readonly number[])[]): number {
  return new Set(sets.map((c) => [...c].sort((x, y) => x - y).join(','))).size;
}

/** One model's circuit located in another and patched there, against its located controls. */
export interface LocatedPatch {
  /** the circuit's channels in the other model, partner by partner (locateOneToOne) */
  located: number[];
  test: LocatedTest;
}

/**
 * The circuit `channels` of model A and its matched control sets `controls` (A's channels), each
 * located in model B one-to-one by activation correlation `corr` [A's channels][B's channels]
 * (locateOneToOne: same size as the circuit, so a located set is never smaller for sharing a
 * partner), then patched in B (`patch`: lastResidualPatch of B on batches the correlations did not
 * use) and ranked.
 */
export function patchLocated(
  corr: Float64Array[],
  channels: readonly number[],
  controls: readonly (readonly number[])[],
  patch: LastResidualPatch,
  rng: Rng,
  o: { bootstrap: number; level?: number },
): LocatedPatch {
  const located = locateOneToOne(corr, channels);
  const distinctControls = distinctSets(controls);
  // a set drawn again is located and patched once
  const seen = new Map<string, Float64Array>();
  const gained = function* () {
    for (const c of controls) {
      const key = c.join(',');
      const g = seen.get(key) ?? patchGained(patch, locateOneToOne(corr, c));
      seen.set(key, g);
      yield g;
    }
  };
  return { located, test: locatedPatchTest(patchGained(patch, located), gained(), patch.gap, rng, { ...o, distinctControls }) };
}
