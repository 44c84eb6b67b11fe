// Candidate circuits: sites (interp/sites.ts) chosen from three sources, each with random controls
// of the same size on the same hook at the same positions.
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
import { gradTimesActivation, topByMagnitude } from './attribution.ts';
import { ANSWER_SOURCE } from './patching.ts';
import { hookDim, orthonormalize, positionMask, randomControl, type PositionSpec, type Site } from './sites.ts';
import type { TaskBatch } from './tasks/index.ts';

export interface CircuitSpec extends Site {
  positions: PositionSpec;
  source: string;
  /** random sites of the same size on the same hook (same positions) */
  controls: Site[];
  /** selection score per channel / direction, same order */
  scores?: number[];
}

export interface AttributionMap {
  hook: string;
  layer: number;
  kind: 'resid' | 'state';
  positions: PositionSpec;
  /** mean grad x activation per coordinate */
  values: Float64Array;
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

/** Adds `count` random controls of the same size to a circuit. */
export function withControls(model: MambaLM, c: Omit<CircuitSpec, 'controls'>, count: number, rng: Rng): CircuitSpec {
  const dim = hookDim(model, c.hook);
  return { ...c, controls: Array.from({ length: count }, (_, j) => randomControl(c, dim, rng.fork(`${c.hook}/${c.source}/control${j}`))) };
}

/** The residual (last layer) and state (best layer and source offset) attribution circuits of `size` coordinates. */
export function attributionCircuits(model: MambaLM, maps: AttributionMap[], size: number, controls: number, rng: Rng): CircuitSpec[] {
  const L = model.config.num_hidden_layers;
  const resid = maps.find((m) => m.kind === 'resid' && m.layer === L - 1)!;
  const states = maps.filter((m) => m.kind === 'state');
  const state = states.reduce((a, b) => (topMass(b.values, size) > topMass(a.values, size) ? b : a));
  return [resid, state].map((m) => {
    const channels = topByMagnitude(m.values, size);
    return withControls(
      model,
      { hook: m.hook, positions: m.positions, channels, source: 'attribution', scores: channels.map((c) => m.values[c]) },
      controls,
      rng,
    );
  });
}

/** A subspace circuit from SAE decoder rows (latent directions) [latents][dim]; dependent rows are dropped. */
export function saeCircuit(
  model: MambaLM,
  hook: string,
  positions: PositionSpec,
  decoderRows: number[][],
  scores: number[],
  controls: number,
  rng: Rng,
): CircuitSpec | null {
  const directions = orthonormalize(decoderRows);
  if (!directions.length) return null;
  return withControls(
    model,
    { hook, positions, channels: [], directions, source: 'sae', scores: scores.slice(0, directions.length) },
    controls,
    rng,
  );
}

/** A channel circuit from a probe's selected dimensions, the `size` largest |coefficient| first. */
export function probeCircuit(
  model: MambaLM,
  hook: string,
  positions: PositionSpec,
  selected: number[],
  coefficients: number[],
  size: number,
  controls: number,
  rng: Rng,
): CircuitSpec | null {
  const order = selected
    .map((c, i) => ({ c, w: Math.abs(coefficients[i] ?? 0) }))
    .sort((a, b) => b.w - a.w || a.c - b.c)
    .slice(0, size);
  if (!order.length) return null;
  const channels = order.map((o) => o.c).sort((a, b) => a - b);
  const coef = new Map(selected.map((c, i) => [c, coefficients[i] ?? 0]));
  return withControls(model, { hook, positions, channels, source: 'probe', scores: channels.map((c) => coef.get(c)!) }, controls, rng);
}

/** The channels a subspace loads on most (largest summed |loading| over its directions): for comparing sources. */
export function dominantChannels(directions: number[][], k: number): number[] {
  const dim = directions[0]?.length ?? 0;
  const load = new Float64Array(dim);
  for (const u of directions) for (let i = 0; i < dim; i++) load[i] += Math.abs(u[i]);
  return topByMagnitude(load, k);
}
