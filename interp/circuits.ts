// Candidate circuits: sites (interp/sites.ts) chosen from three sources, each with matched controls
// of the same size on the same hook at the same positions (interp/controls.ts: channels of the same
// activation-variance strata, subspaces drawn from the activation covariance, both measured on the
// selection sequences at the circuit's cells).
//   attribution  the channels with the largest |mean grad x activation| (interp/attribution.ts)
//   sae          the decoder directions of the SAE latents most correlated with a task variable,
//                made orthonormal (a subspace of that dimension)
//   probe        the activation dimensions a sparse probe selected (largest |coefficient| first)
// Two attribution candidates are always made: the residual stream at the scored positions (last
// layer: where the answer must be readable) and the SSM state hook_h at the positions the answer is
// copied from (the layer and offset after the source with the largest attribution mass), so both a residual and a state circuit
// exist for every model.
import type { Rng } from '../engine/random.ts';
import type { MambaLM } from '../mamba/model.ts';
import { gradTimesActivation, sliceExamples, topByMagnitude } from './attribution.ts';

export { sliceExamples };
import { activationProfile, matchedControls, type ActivationProfile } from './controls.ts';
import { ANSWER_SOURCE, cacheActivations, idsOf } from './patching.ts';
import { orthonormalize, positionMask, type PositionSpec, type Site } from './sites.ts';
import type { TaskBatch } from './tasks/index.ts';

export interface CircuitSpec extends Site {
  positions: PositionSpec;
  source: string;
  /** matched sites of the same size on the same hook (same positions) */
  controls: Site[];
  /** selection score per channel / direction, same order */
  scores?: number[];
}

export interface AttributionMap {
  hook: string;
  layer: number;
  kind: 'resid' | 'state';
  positions: PositionSpec;
  /** mean grad x activation per coordinate (or, for attribution patching, the predicted patching effect) */
  values: Float64Array;
  /** the selection method the values come from (default 'attribution') */
  source?: string;
}

/** The positions a task's answer is copied from (falls back to the scored positions). */
export function sourcePositions(taskName: string): PositionSpec {
  return ANSWER_SOURCE[taskName] ?? 'scored';
}

/** Grad x activation for every layer's residual output (scored positions) and SSM state (answer-source positions, offsets 0..conv_kernel-1). */
export async function attributionMaps(model: MambaLM, taskName: string, batch: TaskBatch): Promise<AttributionMap[]> {
  const L = model.config.num_hidden_layers;
  const maps: Omit<AttributionMap, 'values'>[] = [];
  const src = sourcePositions(taskName);
  for (let i = 0; i < L; i++) {
    maps.push({ hook: `blocks.${i}.hook_resid_post`, layer: i, kind: 'resid', positions: 'scored' });
    // the conv mixes the source token into the next conv_kernel-1 positions' inputs, so the state
    // may take the answer in at any of them: each offset is a candidate position
    const offsets = typeof src === 'object' && !Array.isArray(src) ? model.config.conv_kernel : 1;
    for (let o = 0; o < offsets; o++) {
      const positions = typeof src === 'object' && !Array.isArray(src) ? { label: src.label, offset: (src.offset ?? 0) + o } : src;
      maps.push({ hook: `blocks.${i}.mixer.hook_h`, layer: i, kind: 'state', positions });
    }
  }
  const values = await gradTimesActivation(
    model,
    batch,
    maps.map((m) => ({ hook: m.hook, mask: positionMask(m.positions, batch) })),
  );
  return maps.map((m, k) => ({ ...m, values: values[k] }));
}

/** Sum of |values| over the top-k coordinates: how much attribution a k-coordinate circuit there captures. */
export function topMass(values: ArrayLike<number>, k: number): number {
  return topByMagnitude(values, k).reduce((s, i) => s + Math.abs(values[i]), 0);
}

/** How controls are drawn: how many, the variance strata, and the stream. */
export interface ControlOptions {
  count: number;
  strata: number;
  rng: Rng;
}

/** The activation profile of a hook at a position spec on a batch (the covariance too for subspace circuits). */
export async function profileAt(
  model: MambaLM,
  batch: TaskBatch,
  hook: string,
  positions: PositionSpec,
  covariance = false,
): Promise<ActivationProfile> {
  const ids = idsOf(model, batch);
  const act = cacheActivations(model, ids, [hook]).get(hook)!;
  try {
    return await activationProfile(act, positionMask(positions, batch), covariance);
  } finally {
    act.dispose();
    ids.dispose();
  }
}

/** Adds `o.count` matched controls of the same size to a circuit, from its hook's profile at its positions on `batch`. */
export async function withControls(
  model: MambaLM,
  batch: TaskBatch,
  c: Omit<CircuitSpec, 'controls'>,
  o: ControlOptions,
): Promise<CircuitSpec> {
  const profile = await profileAt(model, batch, c.hook, c.positions, !!c.directions?.length);
  return { ...c, controls: matchedControls(c, profile, o.count, o.strata, o.rng.fork(`${c.hook}/${c.source}`)) };
}

/** The residual (last layer) and state (best layer and source offset) attribution circuits of `size` coordinates; controls matched on `batch`. */
export async function attributionCircuits(
  model: MambaLM,
  maps: AttributionMap[],
  size: number,
  batch: TaskBatch,
  o: ControlOptions,
): Promise<CircuitSpec[]> {
  const L = model.config.num_hidden_layers;
  const resid = maps.find((m) => m.kind === 'resid' && m.layer === L - 1)!;
  const states = maps.filter((m) => m.kind === 'state');
  const state = states.reduce((a, b) => (topMass(b.values, size) > topMass(a.values, size) ? b : a));
  const out: CircuitSpec[] = [];
  for (const m of [resid, state]) {
    const channels = topByMagnitude(m.values, size);
    out.push(
      await withControls(
        model,
        batch,
        { hook: m.hook, positions: m.positions, channels, source: m.source ?? 'attribution', scores: channels.map((c) => m.values[c]) },
        o,
      ),
    );
  }
  return out;
}

/** A subspace circuit from SAE decoder rows (latent directions) [latents][dim]; dependent rows are dropped. */
export async function saeCircuit(
  model: MambaLM,
  hook: string,
  positions: PositionSpec,
  decoderRows: number[][],
  scores: number[],
  batch: TaskBatch,
  o: ControlOptions,
): Promise<CircuitSpec | null> {
  const directions = orthonormalize(decoderRows);
  if (!directions.length) return null;
  return withControls(
    model,
    batch,
    { hook, positions, channels: [], directions, source: 'sae', scores: scores.slice(0, directions.length) },
    o,
  );
}

/** A channel circuit from a probe's selected dimensions, the `size` largest |coefficient| first. */
export async function probeCircuit(
  model: MambaLM,
  hook: string,
  positions: PositionSpec,
  selected: number[],
  coefficients: number[],
  size: number,
  batch: TaskBatch,
  o: ControlOptions,
): Promise<CircuitSpec | null> {
  const order = selected
    .map((c, i) => ({ c, w: Math.abs(coefficients[i] ?? 0) }))
    .sort((a, b) => b.w - a.w || a.c - b.c)
    .slice(0, size);
  if (!order.length) return null;
  const channels = order.map((o) => o.c).sort((a, b) => a - b);
  const coef = new Map(selected.map((c, i) => [c, coefficients[i] ?? 0]));
  return withControls(model, batch, { hook, positions, channels, source: 'probe', scores: channels.map((c) => coef.get(c)!) }, o);
}

/** The channels a subspace loads on most (largest summed |loading| over its directions): for comparing sources. */
export function dominantChannels(directions: number[][], k: number): number[] {
  const dim = directions[0]?.length ?? 0;
  const load = new Float64Array(dim);
  for (const u of directions) for (let i = 0; i < dim; i++) load[i] += Math.abs(u[i]);
  return topByMagnitude(load, k);
}

/**
 * The two halves of one pool of sequences: circuits (and their matched controls) are selected on
 * `selection`, and patched and perturbed on `test`, so no sequence both picks a circuit and tests it.
 */
export function splitHalves(pool: TaskBatch): { selection: TaskBatch; test: TaskBatch } {
  const B = pool.shape[0];
  if (B < 4 || B % 2) throw new Error(`splitHalves: the pool needs an even number (>= 4) of sequences, got ${B}`);
  return { selection: sliceExamples(pool, 0, B / 2), test: sliceExamples(pool, B / 2, B) };
}
