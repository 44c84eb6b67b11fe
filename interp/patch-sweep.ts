// Activation-patching sweeps over (hook, position), as TransformerLens's get_act_patch_resid_pre
// and friends: each cell is one forward of the corrupted input with the clean run's activation
// patched in at one hook and one position (every channel, every example), scored by the normalised
// logit difference
//     (LD_patched - LD_corrupted) / (LD_clean - LD_corrupted)
// with LD the mean over examples of logit(a) - logit(b) at each example's position (0: the patch
// restores nothing, 1: everything). The rows are hook names; layerHooks gives the usual ones per
// layer: hook_resid_pre, hook_resid_post, hook_mixer_out, and the SSM state hook_h. A state is
// patched as mamba/hooks.ts does it: h_t is replaced and the scan continues from it, so the patch
// reaches every later position (the conv window's inputs are not part of the state and stay
// corrupted).
//
// attributionSweep estimates the same grid by attribution patching (AtP; Nanda 2023, Syed et al.
// 2023): the first-order term (a_clean - a_corrupted) . dLD/da at the corrupted run, summed over
// the cell's channels and examples, from one forward and one backward for all cells, divided by
// the same denominator. It is exact where LD is linear in the activation (hook_norm_f, hook_logits).
//
// Channel groups (opts.channelGroups) make it a hook x position x channel-group sweep: each hook's
// channels (the axis after T: d of a residual, E of a mixer hook, E of hook_h with each channel's N
// states) are split into groups, given as lists or as a count of contiguous groups, and each row is
// one (hook, group): only that group's channels are patched (AtP: only their terms are summed).
import * as mi from '../engine/index.ts';
import type { Tensor } from '../engine/index.ts';
import type { Hook, HookContext } from '../mamba/hooks.ts';
import type { IdsLike, MambaLM } from '../mamba/model.ts';
import { heatmap, scatter, type Spec } from './report/figures.ts';
import { logitDiffOf, resolveLogitDiff, type LogitDiff } from './logit-lens.ts';
import { isStateHook } from './sites.ts';

export type LayerHook = 'resid_pre' | 'resid_post' | 'mixer_out' | 'h';

/** The hook of every layer for a kind of sweep (rows of a layer x position sweep). */
export function layerHooks(model: MambaLM, kind: LayerHook): string[] {
  const leaf = { resid_pre: 'hook_resid_pre', resid_post: 'hook_resid_post', mixer_out: 'hook_mixer_out', h: 'mixer.hook_h' }[kind];
  if (!leaf) throw new Error(`layerHooks: unknown kind '${kind}' (resid_pre, resid_post, mixer_out, h)`);
  return Array.from({ length: model.config.num_hidden_layers }, (_, i) => `blocks.${i}.${leaf}`);
}

export interface SweepResult {
  /** the rows' hook names (with channel groups, one row per hook and group) */
  hooks: string[];
  /** with channel groups: the channels each row patches (row k of hook hooks[k]) */
  groups?: number[][];
  /** T: the columns are positions 0..T-1 */
  positions: number;
  /** [row][position]: the normalised logit difference (patching) or its first-order estimate (AtP) */
  values: number[][];
  /** mean logit difference of the clean and of the corrupted run */
  clean: number;
  corrupted: number;
}

interface Runs {
  clean: Tensor;
  corrupt: Tensor;
  B: number;
  T: number;
  cleanLd: number;
  corruptLd: number;
  /** clean activations per hook, kept (the caller disposes) */
  acts: Map<string, Tensor>;
  /** the tensors to dispose when done (disposeRuns) */
  own: Tensor[];
}

function disposeRuns(r: Runs): void {
  for (const t of [...r.acts.values(), ...r.own]) t.dispose();
}

function meanOf(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i];
  return s / a.length;
}

async function prepare(
  model: MambaLM,
  cleanIds: IdsLike,
  corruptIds: IdsLike,
  diff: LogitDiff,
  hooks: readonly string[],
  caller: string,
): Promise<Runs> {
  // ids the caller passed as tensors stay theirs; those made here are disposed with the runs
  const clean = model.ids(cleanIds),
    corrupt = model.ids(corruptIds);
  const own = [clean, corrupt].filter((t, k) => t !== [cleanIds, corruptIds][k]);
  const [B, T] = clean.shape;
  if (corrupt.shape[0] !== B || corrupt.shape[1] !== T)
    throw new Error(`${caller}: clean ids are [${clean.shape}] but corrupted ids are [${corrupt.shape}]`);
  if (!hooks.length) throw new Error(`${caller}: no hooks to sweep`);
  const valid = new Set(model.hookNames());
  for (const h of hooks) if (!valid.has(h)) throw new Error(`${caller}: unknown hook '${h}' (see model.hookNames())`);
  resolveLogitDiff(model, diff, B, T);
  const { cleanLogits, corruptLogits, acts } = mi.tidy(() =>
    mi.noGrad(() => {
      const r = model.run(clean, { cache: [...new Set(hooks)] });
      return {
        cleanLogits: mi.keep(r.logits),
        corruptLogits: mi.keep(model.forward(corrupt)),
        acts: new Map([...r.cache].map(([k, v]) => [k, mi.keep(v)])),
      };
    }),
  );
  const cleanLd = meanOf(await logitDiffOf(model, cleanLogits, diff));
  const corruptLd = meanOf(await logitDiffOf(model, corruptLogits, diff));
  // the clean logits are also the cached hook_logits when that is swept
  if (![...acts.values()].includes(cleanLogits)) cleanLogits.dispose();
  corruptLogits.dispose();
  if (cleanLd === corruptLd) {
    for (const t of [...acts.values(), ...own]) t.dispose();
    throw new Error(`${caller}: the clean and corrupted runs have the same logit difference (${cleanLd}); nothing to normalise by`);
  }
  return { clean, corrupt, B, T, cleanLd, corruptLd, acts, own };
}

/** Channel groups: a list of channel lists, or a count of contiguous groups (sizes differ by at most one). */
export type ChannelGroups = number | readonly (readonly number[])[];

/** The groups of a hook with C channels, checked. */
export function channelGroupsOf(groups: ChannelGroups, C: number, hook: string, caller: string): number[][] {
  if (typeof groups === 'number') {
    if (!Number.isInteger(groups) || groups < 1 || groups > C)
      throw new Error(`${caller}: channelGroups ${groups} must be a whole number in [1, ${C}] for ${hook} (${C} channels)`);
    return Array.from({ length: groups }, (_, g) => {
      const from = Math.floor((g * C) / groups),
        to = Math.floor(((g + 1) * C) / groups);
      return Array.from({ length: to - from }, (_, i) => from + i);
    });
  }
  if (!groups.length) throw new Error(`${caller}: channelGroups is an empty list`);
  return groups.map((g, k) => {
    if (!g.length) throw new Error(`${caller}: channel group ${k} is empty`);
    for (const c of g)
      if (!Number.isInteger(c) || c < 0 || c >= C)
        throw new Error(`${caller}: channel group ${k} has channel ${c}, outside [0, ${C}) of ${hook}`);
    return [...g];
  });
}

/** The sweep's rows: every hook once (all channels), or once per channel group. */
function sweepRows(hooks: readonly string[], acts: Map<string, Tensor>, groups: ChannelGroups | undefined, caller: string) {
  return hooks.flatMap((hook) =>
    groups === undefined
      ? [{ hook, channels: null as number[] | null }]
      : channelGroupsOf(groups, acts.get(hook)!.shape[2], hook, caller).map((channels) => ({ hook, channels })),
  );
}

/** 1 at the channels (axis 2 of an activation shaped like `like`, broadcast over the rest), 0 elsewhere; null: every channel. */
function channelMask(like: Tensor, channels: readonly number[] | null, axis: number): Tensor | null {
  if (!channels) return null;
  const C = like.shape[axis];
  const m = new Float64Array(C);
  for (const c of channels) m[c] = 1;
  const shape = like.shape.map((_, i) => (i === axis ? C : 1));
  return mi.tensor(like.dtype === 'float64' ? m : Float32Array.from(m), shape, { dtype: like.dtype, backend: like.backend });
}

/** A hook that puts the clean activation at position t (at the channels, or all) into the corrupted run. */
function patchHook(name: string, cleanAct: Tensor, t: number, T: number, channels: readonly number[] | null = null): Hook {
  if (isStateHook(name)) {
    const [B, , E, N] = cleanAct.shape;
    return {
      name,
      positions: [t],
      fn: (h: Tensor) => {
        const c = mi.reshape(mi.slice(cleanAct, 1, t, t + 1), [B, E, N]);
        const ch = channelMask(h, channels, 1);
        return ch ? mi.add(h, mi.mul(ch, mi.sub(c, h))) : c;
      },
    };
  }
  return {
    name,
    fn: (x: Tensor) => {
      const onehot = new Float64Array(T);
      onehot[t] = 1;
      const shape = [1, T, ...x.shape.slice(2).map(() => 1)];
      let m = mi.tensor(x.dtype === 'float64' ? onehot : Float32Array.from(onehot), shape, { dtype: x.dtype, backend: x.backend });
      const ch = channelMask(x, channels, 2);
      if (ch) m = mi.mul(m, ch);
      return mi.add(x, mi.mul(m, mi.sub(cleanAct, x)));
    },
  };
}

/**
 * Real activation patching at every (hook, position), or (hook, channel group, position) with
 * channelGroups: rows x T forwards of the corrupted ids.
 * `positions` restricts the columns computed (others are NaN); by default every position.
 */
export async function patchSweep(
  model: MambaLM,
  cleanIds: IdsLike,
  corruptIds: IdsLike,
  diff: LogitDiff,
  hooks: readonly string[],
  opts: { positions?: readonly number[]; channelGroups?: ChannelGroups } = {},
): Promise<SweepResult> {
  const r = await prepare(model, cleanIds, corruptIds, diff, hooks, 'patchSweep');
  try {
    const rows = sweepRows(hooks, r.acts, opts.channelGroups, 'patchSweep');
    const cols = opts.positions ?? Array.from({ length: r.T }, (_, t) => t);
    for (const t of cols)
      if (!Number.isInteger(t) || t < 0 || t >= r.T) throw new Error(`patchSweep: position ${t} is outside [0, ${r.T})`);
    const gap = r.cleanLd - r.corruptLd;
    const values = rows.map(() => new Array<number>(r.T).fill(Number.NaN));
    for (let k = 0; k < rows.length; k++) {
      const { hook, channels } = rows[k];
      for (const t of cols) {
        const logits = mi.tidy(() =>
          mi.keep(mi.noGrad(() => model.runWithHooks(r.corrupt, [patchHook(hook, r.acts.get(hook)!, t, r.T, channels)]))),
        );
        const ld = meanOf(await logitDiffOf(model, logits, diff));
        logits.dispose();
        values[k][t] = (ld - r.corruptLd) / gap;
      }
    }
    return resultOf(rows, opts.channelGroups, r, values);
  } finally {
    disposeRuns(r);
  }
}

function resultOf(
  rows: { hook: string; channels: number[] | null }[],
  groups: ChannelGroups | undefined,
  r: Runs,
  values: number[][],
): SweepResult {
  return {
    hooks: rows.map((w) => w.hook),
    ...(groups === undefined ? {} : { groups: rows.map((w) => w.channels!) }),
    positions: r.T,
    values,
    clean: r.cleanLd,
    corrupted: r.corruptLd,
  };
}

/**
 * Attribution patching of the same grid: one forward of the corrupted ids with a zero leaf added at
 * every hook (at every position of a state hook, which splits the scan there), one backward of the
 * mean logit difference. The whole batch goes through one backward: pass fewer sequences when it
 * does not fit in memory.
 */
export async function attributionSweep(
  model: MambaLM,
  cleanIds: IdsLike,
  corruptIds: IdsLike,
  diff: LogitDiff,
  hooks: readonly string[],
  opts: { channelGroups?: ChannelGroups } = {},
): Promise<SweepResult> {
  const r = await prepare(model, cleanIds, corruptIds, diff, hooks, 'attributionSweep');
  try {
    const { B, T } = r;
    const V = model.config.vocab_size;
    const d = resolveLogitDiff(model, diff, B, T);
    const gap = r.cleanLd - r.corruptLd;
    const rows = sweepRows(hooks, r.acts, opts.channelGroups, 'attributionSweep');
    const values = rows.map(() => new Array<number>(T).fill(0));
    // per hook and position, each channel's term summed over examples (and a state channel's N states)
    const perChannel = hooks.map((h) => Array.from({ length: T }, () => new Float64Array(r.acts.get(h)!.shape[2])));
    // LD as a fixed linear function of the logits: +1/B at (e, p_e, a_e), -1/B at (e, p_e, b_e)
    const w = new Float64Array(B * T * V);
    for (let e = 0; e < B; e++) {
      w[(e * T + d.position[e]) * V + d.a[e]] += 1 / B;
      w[(e * T + d.position[e]) * V + d.b[e]] -= 1 / B;
    }
    await mi.tidyAsync(async () => {
      const opt = { dtype: model.dtype, backend: model.backend };
      const seen: { row: number; act: Tensor; leaf: Tensor; position: number | null }[] = [];
      const wrap = (row: number, x: Tensor, position: number | null) => {
        const leaf = mi.zeros(x.shape, opt);
        leaf.requiresGrad = true;
        seen.push({ row, act: x, leaf, position });
        return mi.add(x, leaf);
      };
      const all = Array.from({ length: T }, (_, t) => t);
      const hs: Hook[] = hooks.map((name, row) =>
        isStateHook(name)
          ? { name, positions: all, fn: (h: Tensor, ctx: HookContext) => wrap(row, h, ctx.position!) }
          : { name, fn: (x: Tensor) => wrap(row, x, null) },
      );
      const logits = model.runWithHooks(r.corrupt, hs);
      const ld = mi.sum(mi.mul(logits, mi.tensor(model.dtype === 'float64' ? w : Float32Array.from(w), [B, T, V], opt)));
      const grads = mi.backwardFrom(ld);
      for (const { row, act, leaf, position } of seen) {
        const a = await act.data();
        const g = await (grads.get(leaf) ?? mi.zerosLike(leaf)).data();
        const c = await (position === null ? r.acts.get(hooks[row])! : mi.slice(r.acts.get(hooks[row])!, 1, position, position + 1)).data();
        // a normal hook holds [B,T,C]; a state hook the state at one position [B,E,N] (channel: E)
        const per = position === null ? T : 1;
        const dim = a.length / (B * per);
        const C = perChannel[row][0].length,
          width = dim / C;
        for (let e = 0; e < B; e++)
          for (let j = 0; j < per; j++) {
            const o = (e * per + j) * dim;
            const acc = perChannel[row][position ?? j];
            for (let q = 0; q < dim; q++) acc[Math.floor(q / width)] += (c[o + q] - a[o + q]) * g[o + q];
          }
      }
    });
    rows.forEach(({ hook, channels }, k) => {
      const acc = perChannel[hooks.indexOf(hook)];
      for (let t = 0; t < T; t++) {
        let s = 0;
        if (channels) for (const ch of channels) s += acc[t][ch];
        else for (const v of acc[t]) s += v;
        values[k][t] = s / gap;
      }
    });
    return resultOf(rows, opts.channelGroups, r, values);
  } finally {
    disposeRuns(r);
  }
}

/** The hook of each row, with its channels when the sweep has channel groups (contiguous ones as a range). */
function defaultRowLabels(s: SweepResult): string[] {
  if (!s.groups) return s.hooks;
  return s.hooks.map((h, k) => {
    const g = s.groups![k];
    const contiguous = g.every((c, i) => i === 0 || c === g[i - 1] + 1);
    return `${h} [${contiguous && g.length > 1 ? `${g[0]}-${g[g.length - 1]}` : g.join(',')}]`;
  });
}

/** A sweep as a heat map: rows are hooks (layers), columns positions; the colour the normalised metric. */
export function sweepHeatmap(s: SweepResult, title: string, rowLabels: readonly string[] = defaultRowLabels(s)): Spec {
  if (rowLabels.length !== s.hooks.length) throw new Error(`sweepHeatmap: ${rowLabels.length} row labels for ${s.hooks.length} rows`);
  const spec = heatmap(s.values, {
    title: `${title} (clean LD ${s.clean.toFixed(3)}, corrupted ${s.corrupted.toFixed(3)})`,
    rowTitle: 'hook',
    colTitle: 'position',
    valueTitle: '(patched - corrupted) / (clean - corrupted)',
    scheme: 'redblue',
  }) as unknown as { data: { values: { row: number | string }[] }; encoding: { y: { sort?: string[] } } };
  // rows named by their hook, kept in layer order (an ordinal axis of strings would sort them as text)
  const names = rowLabels.map((l, i) => `${i}: ${l}`);
  for (const v of spec.data.values) v.row = names[v.row as number];
  spec.encoding.y.sort = names;
  return spec as unknown as Spec;
}

/** AtP against real patching, one point per (hook, position) computed by both. */
export function atpScatter(real: SweepResult, atp: SweepResult, title: string): Spec {
  if (
    real.hooks.join() !== atp.hooks.join() ||
    real.positions !== atp.positions ||
    JSON.stringify(real.groups) !== JSON.stringify(atp.groups)
  )
    throw new Error('atpScatter: the two sweeps cover different cells');
  const rows: Record<string, number | string>[] = [];
  real.values.forEach((r, k) =>
    r.forEach((v, t) => {
      if (Number.isFinite(v))
        rows.push({ patching: v, atp: atp.values[k][t], hook: real.hooks[k].replace(/^blocks\.\d+\./, ''), position: t });
    }),
  );
  return scatter(rows, {
    title,
    x: 'patching',
    y: 'atp',
    color: 'hook',
    xTitle: 'activation patching (normalised)',
    yTitle: 'attribution patching (normalised)',
  });
}
