// Path patching (Wang et al. 2022, "Interpretability in the Wild"; TransformerLens / ARENA's
// path-patching utilities), denoising direction: how much of the clean-vs-corrupted logit
// difference travels from a sender site to the receiver sites along the direct path alone.
//   1. clean and corrupted runs, caching the sender's clean and the frozen hooks' corrupted values;
//   2. a corrupted run with the sender's cells set to their clean values and every frozen hook
//      (default: every layer's hook_mixer_out outside the senders' layers) held at its corrupted
//      values, so that a change reaches the receivers only straight through the residual stream
//      (or, inside the sender's own layer, through the scan); the receivers are recomputed and
//      their values read;
//   3. a plain corrupted run with only the receivers' cells set to the values read in 2, everything
//      downstream recomputed; the metric is read there,
//     (LD_patched - LD_corrupted) / (LD_clean - LD_corrupted)
// with LD the mean over examples of logit(a) - logit(b), as interp/patch-sweep.ts.
//
// A site is a hook and the positions patched there (all examples, all channels; default every
// position). The SSM state hook_h may be a sender or a receiver: its cells are states h_t,
// replaced as mamba/hooks.ts does it (the scan continues from the replaced state). hook_h cannot
// be frozen (the states are not a layer's output; freeze its mixer_out). With `freeze: []`
// nothing is held, step 2 is the full activation patch of the sender, and receivers that cut every
// path (e.g. the last residual at the scored position) give full activation patching.
import * as mi from '../engine/index.ts';
import type { Tensor } from '../engine/index.ts';
import type { Hook } from '../mamba/hooks.ts';
import type { IdsLike, MambaLM } from '../mamba/model.ts';
import { logitDiffOf, resolveLogitDiff, type LogitDiff } from './logit-lens.ts';
import { isStateHook } from './sites.ts';

export interface PathSite {
  hook: string;
  /** the positions patched at this hook (every example, every channel); default every position */
  positions?: readonly number[];
}

export interface PathPatchOptions {
  sender: PathSite | readonly PathSite[];
  receivers: readonly PathSite[];
  /** hooks held at their corrupted values in step 2 (except at sender and receiver cells); default frozenMixers */
  freeze?: readonly string[];
}

export interface PathPatchResult {
  /** (patched - corrupted) / (clean - corrupted) of the mean logit difference */
  value: number;
  /** mean logit difference of the clean, the corrupted and the path-patched run */
  clean: number;
  corrupted: number;
  patched: number;
  /** the hooks held at the corrupted run in step 2 */
  frozen: string[];
}

const layerOf = (hook: string): number | null => {
  const m = /^blocks\.(\d+)\./.exec(hook);
  return m ? Number(m[1]) : null;
};

/** The default frozen hooks: the mixer output of every layer that holds no sender. */
export function frozenMixers(model: MambaLM, senders: readonly PathSite[]): string[] {
  const own = new Set(senders.map((s) => layerOf(s.hook)));
  return Array.from({ length: model.config.num_hidden_layers }, (_, i) => i)
    .filter((i) => !own.has(i))
    .map((i) => `blocks.${i}.hook_mixer_out`);
}

function meanOf(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i];
  return s / a.length;
}

/** x with the cells at `positions` (along T, every example and channel) taken from `value`. */
function mixAt(x: Tensor, value: Tensor, positions: ReadonlySet<number>): Tensor {
  const T = x.shape[1];
  const m = new Float64Array(T);
  for (const t of positions) m[t] = 1;
  const shape = [1, T, ...x.shape.slice(2).map(() => 1)];
  const mask = mi.tensor(x.dtype === 'float64' ? m : Float32Array.from(m), shape, { dtype: x.dtype, backend: x.backend });
  return mi.add(x, mi.mul(mask, mi.sub(value, x)));
}

/** The state h_t [B,E,N] of cached states [B,T,E,N]. */
function stateAt(states: Tensor, t: number): Tensor {
  const [B, , E, N] = states.shape;
  return mi.reshape(mi.slice(states, 1, t, t + 1), [B, E, N]);
}

function positionsOf(site: PathSite, T: number, what: string): number[] {
  const ps = site.positions ?? Array.from({ length: T }, (_, t) => t);
  if (!ps.length) throw new Error(`pathPatch: ${what} ${site.hook} has no positions`);
  for (const t of ps)
    if (!Number.isInteger(t) || t < 0 || t >= T) throw new Error(`pathPatch: ${what} ${site.hook} position ${t} is outside [0, ${T})`);
  return [...new Set(ps)].sort((a, b) => a - b);
}

/** Path patching from the sender site(s) to the receiver sites (see the header). */
export async function pathPatch(
  model: MambaLM,
  cleanIds: IdsLike,
  corruptIds: IdsLike,
  diff: LogitDiff,
  opts: PathPatchOptions,
): Promise<PathPatchResult> {
  const senders: readonly PathSite[] = Array.isArray(opts.sender) ? opts.sender : [opts.sender as PathSite];
  const { receivers } = opts;
  if (!senders.length) throw new Error('pathPatch: no sender site');
  if (!receivers.length) throw new Error('pathPatch: no receiver site');
  const clean = model.ids(cleanIds),
    corrupt = model.ids(corruptIds);
  const own = [clean, corrupt].filter((t, k) => t !== [cleanIds, corruptIds][k]);
  const kept: Tensor[] = [];
  try {
    const [B, T] = clean.shape;
    if (corrupt.shape[0] !== B || corrupt.shape[1] !== T)
      throw new Error(`pathPatch: clean ids are [${clean.shape}] but corrupted ids are [${corrupt.shape}]`);
    resolveLogitDiff(model, diff, B, T);
    const valid = new Set(model.hookNames());
    const frozen = [...(opts.freeze ?? frozenMixers(model, senders))];
    const check = (hook: string, what: string) => {
      if (!valid.has(hook)) throw new Error(`pathPatch: unknown ${what} hook '${hook}' (see model.hookNames())`);
    };
    const senderCells = new Map<string, Set<number>>(),
      receiverCells = new Map<string, Set<number>>();
    for (const [sites, cells, what] of [
      [senders, senderCells, 'sender'],
      [receivers, receiverCells, 'receiver'],
    ] as const)
      for (const s of sites) {
        check(s.hook, what);
        const set = cells.get(s.hook) ?? new Set<number>();
        for (const t of positionsOf(s, T, what)) set.add(t);
        cells.set(s.hook, set);
      }
    for (const h of senderCells.keys()) if (receiverCells.has(h)) throw new Error(`pathPatch: hook ${h} is both a sender and a receiver`);
    for (const h of frozen) {
      check(h, 'frozen');
      if (isStateHook(h)) throw new Error(`pathPatch: a state hook cannot be frozen ('${h}'); freeze that layer's hook_mixer_out`);
    }

    // 1. the clean run (senders' values) and the corrupted run (frozen values)
    const { cleanLogits, corruptLogits, cleanActs, corruptActs } = mi.tidy(() =>
      mi.noGrad(() => {
        const c = model.run(clean, { cache: [...senderCells.keys()] });
        const k = model.run(corrupt, { cache: [...new Set(frozen)] });
        return {
          cleanLogits: mi.keep(c.logits),
          corruptLogits: mi.keep(k.logits),
          cleanActs: new Map([...c.cache].map(([n, v]) => [n, mi.keep(v)])),
          corruptActs: new Map([...k.cache].map(([n, v]) => [n, mi.keep(v)])),
        };
      }),
    );
    kept.push(cleanLogits, corruptLogits, ...cleanActs.values(), ...corruptActs.values());
    const cleanLd = meanOf(await logitDiffOf(model, cleanLogits, diff));
    const corruptLd = meanOf(await logitDiffOf(model, corruptLogits, diff));
    if (cleanLd === corruptLd)
      throw new Error(`pathPatch: the clean and corrupted runs have the same logit difference (${cleanLd}); nothing to normalise by`);

    // 2. the sender patched, the frozen hooks held, the receivers read
    const hooks2: Hook[] = [];
    const frozenSet = new Set(frozen);
    for (const name of new Set([...frozen, ...senderCells.keys()])) {
      const sc = senderCells.get(name);
      if (sc && isStateHook(name)) {
        const states = cleanActs.get(name)!;
        hooks2.push({ name, positions: [...sc], fn: (_h, ctx) => stateAt(states, ctx.position!) });
        continue;
      }
      const held = new Set<number>();
      if (frozenSet.has(name)) for (let t = 0; t < T; t++) if (!sc?.has(t) && !receiverCells.get(name)?.has(t)) held.add(t);
      hooks2.push({
        name,
        fn: (x) => {
          let y = held.size ? mixAt(x, corruptActs.get(name)!, held) : x;
          if (sc) y = mixAt(y, cleanActs.get(name)!, sc);
          return y;
        },
      });
    }
    const read = new Map<string, Tensor>(); // non-state receivers: [B,T,...]; states: `${hook}@${t}` -> [B,E,N]
    for (const [name, cells] of receiverCells)
      if (isStateHook(name))
        hooks2.push({
          name,
          positions: [...cells],
          fn: (h, ctx) => {
            read.set(`${name}@${ctx.position}`, mi.keep(h));
          },
        });
    const plain = [...receiverCells.keys()].filter((n) => !isStateHook(n));
    mi.tidy(() =>
      mi.noGrad(() => {
        const r = model.run(corrupt, { hooks: hooks2, cache: plain });
        for (const n of plain) read.set(n, mi.keep(r.cache.get(n)!));
      }),
    );
    kept.push(...read.values());

    // 3. the corrupted run with only the receivers set to what they read in 2
    const hooks3: Hook[] = [...receiverCells].map(([name, cells]) =>
      isStateHook(name)
        ? { name, positions: [...cells], fn: (_h, ctx) => read.get(`${name}@${ctx.position}`)! }
        : { name, fn: (x) => mixAt(x, read.get(name)!, cells) },
    );
    const logits = mi.tidy(() => mi.keep(mi.noGrad(() => model.runWithHooks(corrupt, hooks3))));
    kept.push(logits);
    const patched = meanOf(await logitDiffOf(model, logits, diff));
    return { value: (patched - corruptLd) / (cleanLd - corruptLd), clean: cleanLd, corrupted: corruptLd, patched, frozen };
  } finally {
    for (const t of new Set([...kept, ...own])) t.dispose();
  }
}
