// Where an intervention acts: one hook point, a set of (example, position) cells, and a set of
// coordinates of the activation there (channels, or an orthonormal subspace). Shared by
// activation patching (interp/patching.ts), attribution (interp/attribution.ts) and noise
// perturbations (interp/perturb.ts), so all three agree on what "the circuit" covers.
//
// Every edit has the same form. For the activation x at a covered cell and a delta d (for
// replacements d = r - x, for noise d = the noise itself):
//     x' = x + P d        P = diag(channel mask)  or  U^T U for orthonormal rows U [k, dim]
// so coordinates outside the site are left exactly as they were.
//
// hook_h (the SSM states, [batch,T,E,N], flattened to E*N coordinates) can only be replaced at
// explicit positions (mamba/hooks.ts): the hook is called once per position in the union of the
// covered positions and edits only the examples covered there. A replaced state is what the rest
// of the scan continues from.
import * as mi from '../engine/index.ts';
import type { Tensor } from '../engine/index.ts';
import type { Hook } from '../mamba/hooks.ts';
import type { MambaConfig } from '../mamba/config.ts';
import type { MambaLM } from '../mamba/model.ts';
import { IGNORE_INDEX, type TaskBatch } from './tasks/index.ts';

/**
 * Which positions a site covers, per example: the task's scored positions, all positions, fixed
 * positions, or the positions a label names at the scored positions plus an offset (e.g.
 * induction's sourcePos: where the token to copy sits).
 */
export type PositionSpec = 'scored' | 'all' | number[] | { label: string; offset?: number };

export interface Site {
  hook: string;
  /** channel indices into the (flattened) last axes; empty when `directions` is given */
  channels: number[];
  /** orthonormal rows [k][dim] spanning a subspace */
  directions?: number[][];
}

export const isStateHook = (hook: string): boolean => hook.endsWith('.hook_h');

/** The width of a hook's activation per position (hook_h: E*N). */
export function hookDim(model: MambaLM, hook: string): number {
  if (!model.hookNames().includes(hook)) throw new Error(`hookDim: unknown hook '${hook}' (see model.hookNames())`);
  return hookDimOf(model.config, hook);
}

/** hookDim from a config alone (e.g. to size an allocation before any model is built). */
export function hookDimOf(c: MambaConfig, hook: string): number {
  const E = c.intermediate_size,
    N = c.state_size,
    R = c.time_step_rank as number;
  const leaf = hook.split('.').pop()!;
  const dims: Record<string, number> = {
    hook_embed: c.hidden_size,
    hook_resid_pre: c.hidden_size,
    hook_norm: c.hidden_size,
    hook_mixer_out: c.hidden_size,
    hook_resid_post: c.hidden_size,
    hook_norm_f: c.hidden_size,
    hook_logits: c.vocab_size,
    hook_in_proj: 2 * E,
    hook_x: E,
    hook_z: E,
    hook_conv: E,
    hook_conv_act: E,
    hook_dt: E,
    hook_delta: E,
    hook_ssm_out: E,
    hook_gated: E,
    hook_x_proj: R + 2 * N,
    hook_B: N,
    hook_C: N,
    hook_h: E * N,
  };
  const d = dims[leaf];
  if (!d) throw new Error(`hookDim: unknown hook '${hook}' (see model.hookNames())`);
  return d;
}

/** Number of coordinates a site spans. */
export function siteSize(site: Site): number {
  return site.directions?.length ?? site.channels.length;
}

/** The covered cells as a [batch*T] 0/1 mask. */
export function positionMask(spec: PositionSpec, batch: TaskBatch): Uint8Array {
  const [B, T] = batch.shape;
  const mask = new Uint8Array(B * T);
  if (spec === 'all') return mask.fill(1);
  if (spec === 'scored') {
    batch.targets.forEach((t, i) => {
      if (t !== IGNORE_INDEX) mask[i] = 1;
    });
    return mask;
  }
  if (Array.isArray(spec)) {
    for (const t of spec) {
      if (!Number.isInteger(t) || t < 0 || t >= T) throw new Error(`positionMask: position ${t} is outside [0, ${T})`);
      for (let b = 0; b < B; b++) mask[b * T + t] = 1;
    }
    return mask;
  }
  const lab = batch.labels[spec.label];
  if (!lab) throw new Error(`positionMask: the batch has no label '${spec.label}' (has ${Object.keys(batch.labels).join(', ')})`);
  const off = spec.offset ?? 0;
  batch.targets.forEach((target, i) => {
    if (target === IGNORE_INDEX || lab[i] < 0) return;
    // a label position plus an offset past the sequence's end covers nothing there
    const b = Math.floor(i / T),
      t = lab[i] + off;
    if (t >= 0 && t < T) mask[b * T + t] = 1;
  });
  return mask;
}

/** The same number of covered cells per example, drawn from the positions before that example's last scored position that the mask does not cover. */
export function otherPositionsMask(mask: Uint8Array, batch: TaskBatch, rng: mi.Rng): Uint8Array {
  const [B, T] = batch.shape;
  const out = new Uint8Array(B * T);
  for (let b = 0; b < B; b++) {
    let last = -1,
      count = 0;
    for (let t = 0; t < T; t++) {
      if (batch.targets[b * T + t] !== IGNORE_INDEX) last = t;
      count += mask[b * T + t];
    }
    const free: number[] = [];
    for (let t = 0; t <= last; t++) if (!mask[b * T + t]) free.push(t);
    for (const j of rng.sample(free.length, Math.min(count, free.length))) out[b * T + free[j]] = 1;
  }
  return out;
}

/** Rows of Gaussian vectors made orthonormal (modified Gram-Schmidt); dependent rows are redrawn. */
export function randomOrthonormal(k: number, dim: number, rng: mi.Rng): number[][] {
  if (k > dim) throw new Error(`randomOrthonormal: ${k} directions do not fit in ${dim} dimensions`);
  const rows: number[][] = [];
  while (rows.length < k) {
    const v = Array.from({ length: dim }, () => rng.normal());
    const o = orthonormalize([...rows, v]);
    if (o.length > rows.length) rows.push(o[o.length - 1]);
  }
  return rows;
}

/** An orthonormal basis of the span of `vectors` (modified Gram-Schmidt, twice for stability); near-dependent vectors are dropped. */
export function orthonormalize(vectors: number[][]): number[][] {
  const out: number[][] = [];
  for (const v0 of vectors) {
    const v = v0.slice();
    const n0 = Math.hypot(...v);
    for (let pass = 0; pass < 2; pass++) {
      for (const u of out) {
        let d = 0;
        for (let i = 0; i < v.length; i++) d += u[i] * v[i];
        for (let i = 0; i < v.length; i++) v[i] -= d * u[i];
      }
    }
    const n = Math.hypot(...v);
    if (n > 1e-6 * Math.max(n0, 1e-30)) out.push(v.map((x) => x / n));
  }
  return out;
}

/** k distinct channels of [0, dim), avoiding `avoid` when enough others remain; sorted. */
export function randomChannels(k: number, dim: number, rng: mi.Rng, avoid: readonly number[] = []): number[] {
  if (k > dim) throw new Error(`randomChannels: ${k} channels do not fit in ${dim}`);
  const banned = new Set(avoid);
  const pool = Array.from({ length: dim }, (_, i) => i).filter((i) => !banned.has(i));
  const from = pool.length >= k ? pool : Array.from({ length: dim }, (_, i) => i);
  return rng
    .sample(from.length, k)
    .map((j) => from[j])
    .sort((a, b) => a - b);
}

/** A random site of the same kind and size on the same hook: random channels, or a random orthonormal subspace. */
export function randomControl(site: Site, dim: number, rng: mi.Rng): Site {
  if (site.directions) return { hook: site.hook, channels: [], directions: randomOrthonormal(site.directions.length, dim, rng) };
  return { hook: site.hook, channels: randomChannels(site.channels.length, dim, rng, site.channels) };
}

/** What replaces (or is added to) a site's coordinates. */
export type Edit =
  | { kind: 'zero' }
  /** a value per coordinate [dim], e.g. the mean over the data */
  | { kind: 'constant'; value: Float32Array | number[] }
  /** another run's full activation at the hook ([batch,T,...]), e.g. the clean run or a resampled batch */
  | { kind: 'activations'; value: Tensor }
  /** added to the activation (projected onto the site), full shape [batch,T,...] */
  | { kind: 'offset'; value: Tensor };

/**
 * The hooks that apply `edit` to `site` at the cells of `mask` ([batch*T]) during a forward pass
 * over [batch, T] ids. Tensors they create live in the caller's tidy scope.
 */
export function siteHooks(model: MambaLM, site: Site, mask: Uint8Array, shape: readonly [number, number], edit: Edit): Hook[] {
  const [B, T] = shape;
  if (mask.length !== B * T) throw new Error(`siteHooks: mask has ${mask.length} cells, expected ${B}*${T}`);
  const dim = hookDim(model, site.hook);
  const opts = { dtype: model.dtype, backend: model.backend };
  // the model's precision for the edit's own tensors (a float32 basis is only orthonormal to ~1e-7)
  const F = model.dtype === 'float64' ? Float64Array : Float32Array;
  for (const c of site.channels)
    if (!Number.isInteger(c) || c < 0 || c >= dim) throw new Error(`siteHooks: channel ${c} is outside [0, ${dim}) at ${site.hook}`);
  const U = site.directions?.length ? mi.tensor(F.from(site.directions.flat()), [site.directions.length, dim], opts) : null;
  if (U && site.directions!.some((d) => d.length !== dim))
    throw new Error(`siteHooks: directions at ${site.hook} must have ${dim} entries`);
  const chan = new F(dim);
  for (const c of site.channels) chan[c] = 1;
  const chanT = U ? null : mi.tensor(chan, [dim], opts);
  const maskT = mi.tensor(F.from(mask), [B, T, 1], opts);
  const constT = edit.kind === 'constant' ? mi.tensor(F.from(edit.value), [dim], opts) : null;
  if (constT && edit.kind === 'constant' && edit.value.length !== dim)
    throw new Error(`siteHooks: constant has ${edit.value.length} values, ${site.hook} has ${dim}`);

  const project = (d: Tensor): Tensor => {
    if (chanT) return mi.mul(d, chanT);
    const [b, t] = d.shape;
    const flat = mi.reshape(d, [b * t, dim]);
    return mi.reshape(mi.matmul(mi.matmul(flat, U!, { transB: true }), U!), d.shape);
  };
  // x, m, full: [b, t, dim], [b, t, 1], and the edit's full-shape tensor sliced the same way
  const apply = (x: Tensor, m: Tensor, other: Tensor | null): Tensor => {
    let delta: Tensor;
    if (edit.kind === 'zero') delta = mi.neg(x);
    else if (edit.kind === 'constant') delta = mi.sub(constT!, x);
    else if (edit.kind === 'activations') delta = mi.sub(other!, x);
    else delta = other!;
    return mi.add(x, mi.mul(m, project(delta)));
  };
  const full = edit.kind === 'activations' || edit.kind === 'offset' ? edit.value : null;
  if (full && (full.shape[0] !== B || full.shape[1] !== T || full.size !== B * T * dim)) {
    throw new Error(
      `siteHooks: the ${edit.kind} tensor at ${site.hook} is [${full.shape}], expected [${B}, ${T}, ...] with ${dim} per position`,
    );
  }

  if (!isStateHook(site.hook)) {
    return [
      {
        name: site.hook,
        fn: (x) => {
          const x3 = mi.reshape(x, [B, T, dim]);
          return mi.reshape(apply(x3, maskT, full ? mi.reshape(full, [B, T, dim]) : null), x.shape);
        },
      },
    ];
  }
  const positions = maskedPositions(mask, B, T);
  if (!positions.length) return [];
  return [
    {
      name: site.hook,
      positions,
      fn: (h, ctx) => {
        const p = ctx.position!;
        const m = mi.slice(maskT, 1, p, p + 1);
        const other = full ? mi.reshape(mi.slice(full, 1, p, p + 1), [B, 1, dim]) : null;
        return mi.reshape(apply(mi.reshape(h, [B, 1, dim]), m, other), h.shape);
      },
    },
  ];
}

/**
 * The hooks that apply one edit to each of several channel sites on the same hook, for a forward
 * over the batch stacked sites.length times along the batch axis ([sites.length * B, T] ids: block
 * s is the batch under site s's edit). Same arithmetic as siteHooks per block, so a block equals
 * the single-site run; one forward then serves many control sites. Replacements only ('zero',
 * 'constant', 'activations' of the unstacked batch [B, T, ...]).
 */
export function stackedSiteHooks(
  model: MambaLM,
  sites: readonly Site[],
  mask: Uint8Array,
  shape: readonly [number, number],
  edit: Edit,
): Hook[] {
  const [B, T] = shape;
  const n = sites.length;
  if (!n) throw new Error('stackedSiteHooks: no sites');
  const hook = sites[0].hook;
  if (sites.some((s) => s.hook !== hook)) throw new Error('stackedSiteHooks: the sites must share one hook');
  if (sites.some((s) => s.directions?.length))
    throw new Error('stackedSiteHooks: channel sites only (subspace sites go through siteHooks)');
  if (edit.kind === 'offset') throw new Error('stackedSiteHooks: offsets differ per site; use siteHooks');
  if (mask.length !== B * T) throw new Error(`stackedSiteHooks: mask has ${mask.length} cells, expected ${B}*${T}`);
  const dim = hookDim(model, hook);
  const opts = { dtype: model.dtype, backend: model.backend };
  const F = model.dtype === 'float64' ? Float64Array : Float32Array;
  const chan = new F(n * dim);
  sites.forEach((s, i) => {
    for (const c of s.channels) {
      if (!Number.isInteger(c) || c < 0 || c >= dim) throw new Error(`stackedSiteHooks: channel ${c} is outside [0, ${dim}) at ${hook}`);
      chan[i * dim + c] = 1;
    }
  });
  if (edit.kind === 'constant' && edit.value.length !== dim)
    throw new Error(`stackedSiteHooks: constant has ${edit.value.length} values, ${hook} has ${dim}`);
  const full = edit.kind === 'activations' ? edit.value : null;
  if (full && (full.shape[0] !== B || full.shape[1] !== T || full.size !== B * T * dim))
    throw new Error(
      `stackedSiteHooks: the activations at ${hook} are [${full.shape}], expected [${B}, ${T}, ...] with ${dim} per position`,
    );
  const constT = edit.kind === 'constant' ? mi.tensor(F.from(edit.value), [dim], opts) : null;
  // delta = replacement - x, masked to each block's channels and to the covered cells
  const apply = (x: Tensor, m: Tensor, ch: Tensor, other: Tensor | null): Tensor => {
    const delta = edit.kind === 'zero' ? mi.neg(x) : edit.kind === 'constant' ? mi.sub(constT!, x) : mi.sub(other!, x);
    return mi.add(x, mi.mul(mi.mul(delta, ch), m));
  };
  if (!isStateHook(hook)) {
    const chT = mi.tensor(chan, [n, 1, 1, dim], opts);
    const maskT = mi.tensor(F.from(mask), [1, B, T, 1], opts);
    return [
      {
        name: hook,
        fn: (x) => {
          const x4 = mi.reshape(x, [n, B, T, dim]);
          return mi.reshape(apply(x4, maskT, chT, full ? mi.reshape(full, [1, B, T, dim]) : null), x.shape);
        },
      },
    ];
  }
  const chS = mi.tensor(chan, [n, 1, dim], opts);
  const maskS = mi.tensor(F.from(mask), [1, B, T], opts);
  const positions = maskedPositions(mask, B, T);
  if (!positions.length) return [];
  return [
    {
      name: hook,
      positions,
      fn: (h, ctx) => {
        const p = ctx.position!;
        const m = mi.slice(maskS, 2, p, p + 1);
        const other = full ? mi.reshape(mi.slice(full, 1, p, p + 1), [1, B, dim]) : null;
        return mi.reshape(apply(mi.reshape(h, [n, B, dim]), m, chS, other), h.shape);
      },
    },
  ];
}

/** The positions t (ascending) at which the [B, T] mask is set for at least one sequence. */
function maskedPositions(mask: ArrayLike<number>, B: number, T: number): number[] {
  const positions: number[] = [];
  for (let t = 0; t < T; t++)
    for (let b = 0; b < B; b++)
      if (mask[b * T + t]) {
        positions.push(t);
        break;
      }
  return positions;
}
