// TransformerLens-style hook points of the Mamba model: every named activation of the forward pass
// can be read (runWithCache) or replaced (runWithHooks) by a function, and gradients flow through
// whatever the function returns.
//
// Names, with i the layer and shapes for input ids [batch, T] (d = hidden, E = intermediate,
// R = time_step_rank, N = state_size, V = vocab):
//   hook_embed                     [batch,T,d]   the embedding rows
//   blocks.i.hook_resid_pre        [batch,T,d]   the residual stream entering layer i
//   blocks.i.hook_norm             [batch,T,d]   RMSNorm(residual): the mixer input
//   blocks.i.mixer.hook_in_proj    [batch,T,2E]  in_proj output (x then z)
//   blocks.i.mixer.hook_x          [batch,T,E]   the x half, before the conv
//   blocks.i.mixer.hook_z          [batch,T,E]   the gate half
//   blocks.i.mixer.hook_conv       [batch,T,E]   causal conv output (+ bias), before SiLU
//   blocks.i.mixer.hook_conv_act   [batch,T,E]   SiLU(conv): the scan input u
//   blocks.i.mixer.hook_x_proj     [batch,T,R+2N] x_proj output (dt_raw, B, C)
//   blocks.i.mixer.hook_dt         [batch,T,E]   dt_proj(dt_raw) INCLUDING dt_proj.bias, before softplus
//   blocks.i.mixer.hook_delta      [batch,T,E]   softplus(hook_dt): the step size
//   blocks.i.mixer.hook_B          [batch,T,N]
//   blocks.i.mixer.hook_C          [batch,T,N]
//   blocks.i.mixer.hook_h          [batch,T,E,N] SSM states h_t (state after reading token t; y_t = C_t . h_t)
//   blocks.i.mixer.hook_ssm_out    [batch,T,E]   C.h + D*u, before the gate
//   blocks.i.mixer.hook_gated      [batch,T,E]   hook_ssm_out * SiLU(z): the out_proj input
//   blocks.i.hook_mixer_out        [batch,T,d]
//   blocks.i.hook_resid_post       [batch,T,d]   resid_pre + mixer_out
//   hook_norm_f                    [batch,T,d]
//   hook_logits                    [batch,T,V]
//
// hook_h is special, because a state is not a function of the same position's inputs alone:
//  - without `positions`, the hook sees every state [batch,T,E,N] and may only read them (the
//    states are computed only when some hook or cache asks for them);
//  - with `positions: [t, ...]`, the hook is called once per listed position with the state h_t
//    [batch,E,N] and may return a replacement. The scan is split there: positions before t are
//    scanned as usual, y_t is read from the replaced state, and the scan continues from it, so the
//    patch reaches every later position and no earlier one.
// Hooks on hook_dt or hook_delta make that layer compute delta explicitly (unfused) so the
// replacement is what the scan consumes; otherwise dt_proj's bias and the softplus are fused into
// the scan kernel and those two tensors are not materialised.
import type { Tensor } from '../engine/index.ts';

export interface HookContext {
  /** the hook point's full name */
  readonly name: string;
  /** the layer, for block hooks */
  readonly layer?: number;
  /** the position, for hook_h with positions */
  readonly position?: number;
  /**
   * the absolute position of the activation's first position along T: 0 in a forward pass, the
   * token's position in a generation step (mamba/recurrent.ts), so that a hook acting on a range of
   * positions (steering from position p on) does the same in both
   */
  readonly offset: number;
}

/** Returns a replacement (same shape and dtype) or nothing to leave the activation as it is. */
// biome-ignore lint/suspicious/noConfusingVoidType: a hook that returns nothing leaves the activation as it is
export type HookFn = (t: Tensor, ctx: HookContext) => Tensor | void;

export interface Hook {
  name: string;
  fn: HookFn;
  /** hook_h only: the positions whose state to show and allow to be replaced */
  positions?: number[];
}

export const MIXER_HOOKS = [
  'hook_in_proj',
  'hook_x',
  'hook_z',
  'hook_conv',
  'hook_conv_act',
  'hook_x_proj',
  'hook_dt',
  'hook_delta',
  'hook_B',
  'hook_C',
  'hook_h',
  'hook_ssm_out',
  'hook_gated',
] as const;

/** Every hook name of a model with `layers` layers, in forward order. */
export function hookNames(layers: number): string[] {
  const names = ['hook_embed'];
  for (let i = 0; i < layers; i++) {
    names.push(`blocks.${i}.hook_resid_pre`, `blocks.${i}.hook_norm`);
    for (const m of MIXER_HOOKS) names.push(`blocks.${i}.mixer.${m}`);
    names.push(`blocks.${i}.hook_mixer_out`, `blocks.${i}.hook_resid_post`);
  }
  names.push('hook_norm_f', 'hook_logits');
  return names;
}

/** The hooks of one forward pass, indexed by name, plus the names whose values are to be cached. */
export class HookSet {
  private readonly byName = new Map<string, Hook[]>();
  readonly cache = new Map<string, Tensor>();

  constructor(
    hooks: readonly Hook[],
    readonly cacheNames: ReadonlySet<string>,
    valid: ReadonlySet<string>,
  ) {
    for (const h of hooks) {
      if (!valid.has(h.name)) throw new Error(`hook: unknown hook point '${h.name}' (see model.hookNames())`);
      if (h.positions && !h.name.endsWith('.hook_h')) throw new Error(`hook: positions are only for hook_h, not '${h.name}'`);
      const list = this.byName.get(h.name) ?? [];
      list.push(h);
      this.byName.set(h.name, list);
    }
    for (const n of cacheNames) if (!valid.has(n)) throw new Error(`runWithCache: unknown hook point '${n}'`);
  }

  /** The hook points hooked or cached. */
  names(): string[] {
    return [...new Set([...this.byName.keys(), ...this.cacheNames])];
  }

  /** Whether anything (a hook or the cache) wants this activation. */
  wants(name: string): boolean {
    return this.byName.has(name) || this.cacheNames.has(name);
  }

  /** hook_h: whether all states [batch,T,E,N] are needed (cached, or a hook without positions). */
  wantsAllStates(name: string): boolean {
    return this.cacheNames.has(name) || (this.byName.get(name) ?? []).some((h) => !h.positions);
  }

  /** The positions hook_h hooks ask for at this name, sorted, without duplicates. */
  statePositions(name: string, T: number): number[] {
    const ps = new Set<number>();
    for (const h of this.byName.get(name) ?? []) {
      for (const p of h.positions ?? []) {
        if (!Number.isInteger(p) || p < 0 || p >= T) throw new Error(`hook ${name}: position ${p} is outside [0, ${T})`);
        ps.add(p);
      }
    }
    return [...ps].sort((a, b) => a - b);
  }

  /** Runs the hooks of `name` on t in order (without positions), caches the final value, returns it. */
  apply(name: string, t: Tensor, layer?: number, offset = 0): Tensor {
    for (const h of this.byName.get(name) ?? []) {
      if (h.positions) continue;
      const r = h.fn(t, { name, layer, offset });
      if (r) {
        if (name.endsWith('.hook_h'))
          throw new Error(`hook ${name}: states without positions are read-only; pass positions: [t] to patch a state`);
        t = checked(name, t, r);
      }
    }
    if (this.cacheNames.has(name)) this.cache.set(name, t);
    return t;
  }

  /** Runs the positional hook_h hooks at position p on the state h_p [batch,E,N]. */
  applyState(name: string, h: Tensor, position: number, layer: number): Tensor {
    for (const hk of this.byName.get(name) ?? []) {
      if (!hk.positions?.includes(position)) continue;
      const r = hk.fn(h, { name, layer, position, offset: position });
      if (r) h = checked(`${name}@${position}`, h, r);
    }
    return h;
  }
}

function checked(name: string, old: Tensor, r: Tensor): Tensor {
  if (r.dtype !== old.dtype || r.shape.length !== old.shape.length || r.shape.some((d, i) => d !== old.shape[i])) {
    throw new Error(`hook ${name}: returned ${r.dtype}[${r.shape}] in place of ${old.dtype}[${old.shape}]`);
  }
  return r;
}
