// Hook names of TransformerLens's Mamba bridge (TransformerBridge over HF MambaForCausalLM, its
// SSMMixerBridge) and of MambaLens (HookedMamba), mapped to this project's (mamba/hooks.ts), so a
// script or an SAE cfg.json written for either resolves here. Where the tensor's layout differs the
// entry says how, and toOurLayout converts.
//
// Layouts (b batch, T positions, E intermediate, N state size, d hidden):
//  - TransformerLens `blocks.i.mixer.hook_ssm_state` is [b, E, T, N], channel-first; our
//    `blocks.i.mixer.hook_h` is [b, T, E, N]: swap axes 1 and 2 (transposeStates). Theirs is the
//    post-scan trajectory, so a replacement changes only y_t at the same position; ours, patched with
//    `positions`, carries the patched state forward through the scan.
//  - TransformerLens `blocks.i.mixer.conv1d.hook_out` (alias `mixer.hook_conv`) is [b, E, T + K - 1]
//    (channel-first, before HF cuts the causal conv's K - 1 trailing positions); ours [b, T, E].
//  - MambaLens `blocks.i.hook_h.{t}` is the state at position t [b, E, N]: our hook_h with positions [t].
// Name clashes, where the same name means different things:
//  - `blocks.i.mixer.hook_ssm_out`: TransformerLens's is the MIXER OUTPUT [b, T, d] (our
//    `blocks.i.hook_mixer_out`); ours is C.h + D*u before the gate [b, T, E] (MambaLens's
//    `hook_ssm_output`).
//  - `blocks.i.mixer.hook_conv`: TransformerLens's is channel-first and untrimmed (above).
// resolveHookName gives such a name our meaning unless asked for a source ({ source:
// 'transformer-lens' }), and says so in `clash`.
import * as mi from '../engine/index.ts';
import type { Tensor } from '../engine/index.ts';
import { MIXER_HOOKS } from './hooks.ts';

export type HookSource = 'mamba-interp' | 'transformer-lens' | 'mamba-lens';

/** How the other library's tensor relates to ours. */
export type HookLayout =
  /** the same tensor */
  | 'same'
  /** theirs [b, E, T, ...] is ours [b, T, E, ...] with axes 1 and 2 swapped */
  | 'channel-first'
  /** channel-first and K - 1 positions longer (the untrimmed causal conv) */
  | 'channel-first-untrimmed'
  /** the state at one position [b, E, N]: our hook_h with positions: [position] */
  | 'state-at-position'
  /** the first dt_rank columns of our hook_x_proj [b, T, R + 2N] */
  | 'dt-rank-columns';

export interface HookAlias {
  source: Exclude<HookSource, 'mamba-interp'>;
  /** their name, `{i}` the layer, `{t}` a position */
  theirs: string;
  /** our name (`{i}` the same layer), or null where we have no such hook point */
  ours: string | null;
  layout: HookLayout;
  note?: string;
}

/** The table: every hook point of both libraries' Mamba-1 models. */
export const HOOK_ALIASES: readonly HookAlias[] = [
  // TransformerLens TransformerBridge (model_bridge, Mamba architecture adapter; components embed,
  // blocks[norm, mixer[in_proj, conv1d, x_proj, dt_proj, out_proj]], ln_final, unembed)
  { source: 'transformer-lens', theirs: 'embed.hook_out', ours: 'hook_embed', layout: 'same' },
  { source: 'transformer-lens', theirs: 'hook_embed', ours: 'hook_embed', layout: 'same' },
  { source: 'transformer-lens', theirs: 'blocks.{i}.hook_in', ours: 'blocks.{i}.hook_resid_pre', layout: 'same' },
  { source: 'transformer-lens', theirs: 'blocks.{i}.hook_resid_pre', ours: 'blocks.{i}.hook_resid_pre', layout: 'same' },
  { source: 'transformer-lens', theirs: 'blocks.{i}.norm.hook_out', ours: 'blocks.{i}.hook_norm', layout: 'same' },
  { source: 'transformer-lens', theirs: 'blocks.{i}.mixer.hook_in', ours: 'blocks.{i}.hook_norm', layout: 'same' },
  { source: 'transformer-lens', theirs: 'blocks.{i}.mixer.in_proj.hook_out', ours: 'blocks.{i}.mixer.hook_in_proj', layout: 'same' },
  { source: 'transformer-lens', theirs: 'blocks.{i}.mixer.hook_in_proj', ours: 'blocks.{i}.mixer.hook_in_proj', layout: 'same' },
  {
    source: 'transformer-lens',
    theirs: 'blocks.{i}.mixer.conv1d.hook_out',
    ours: 'blocks.{i}.mixer.hook_conv',
    layout: 'channel-first-untrimmed',
  },
  {
    source: 'transformer-lens',
    theirs: 'blocks.{i}.mixer.hook_conv',
    ours: 'blocks.{i}.mixer.hook_conv',
    layout: 'channel-first-untrimmed',
    note: 'their alias of conv1d.hook_out: channel-first and untrimmed, unlike ours',
  },
  { source: 'transformer-lens', theirs: 'blocks.{i}.mixer.x_proj.hook_out', ours: 'blocks.{i}.mixer.hook_x_proj', layout: 'same' },
  { source: 'transformer-lens', theirs: 'blocks.{i}.mixer.hook_x_proj', ours: 'blocks.{i}.mixer.hook_x_proj', layout: 'same' },
  { source: 'transformer-lens', theirs: 'blocks.{i}.mixer.dt_proj.hook_out', ours: 'blocks.{i}.mixer.hook_dt', layout: 'same' },
  { source: 'transformer-lens', theirs: 'blocks.{i}.mixer.hook_dt_proj', ours: 'blocks.{i}.mixer.hook_dt', layout: 'same' },
  { source: 'transformer-lens', theirs: 'blocks.{i}.mixer.hook_ssm_dt', ours: 'blocks.{i}.mixer.hook_dt', layout: 'same' },
  {
    source: 'transformer-lens',
    theirs: 'blocks.{i}.mixer.hook_ssm_state',
    ours: 'blocks.{i}.mixer.hook_h',
    layout: 'channel-first',
    note: 'theirs [b, E, T, N], ours [b, T, E, N]; patching theirs does not carry forward, ours with positions does',
  },
  {
    source: 'transformer-lens',
    theirs: 'blocks.{i}.mixer.hook_ssm_write',
    ours: null,
    layout: 'same',
    note: 'dt*x*B [b, E, T, N] has no hook point here: compute it from hook_delta, hook_conv_act and hook_B',
  },
  {
    source: 'transformer-lens',
    theirs: 'blocks.{i}.mixer.hook_ssm_out',
    ours: 'blocks.{i}.hook_mixer_out',
    layout: 'same',
    note: 'their hook_ssm_out is the mixer output; ours of that name is C.h + D*u before the gate',
  },
  { source: 'transformer-lens', theirs: 'blocks.{i}.mixer.hook_out', ours: 'blocks.{i}.hook_mixer_out', layout: 'same' },
  { source: 'transformer-lens', theirs: 'blocks.{i}.mixer.out_proj.hook_out', ours: 'blocks.{i}.hook_mixer_out', layout: 'same' },
  { source: 'transformer-lens', theirs: 'blocks.{i}.hook_out', ours: 'blocks.{i}.hook_resid_post', layout: 'same' },
  { source: 'transformer-lens', theirs: 'blocks.{i}.hook_resid_post', ours: 'blocks.{i}.hook_resid_post', layout: 'same' },
  { source: 'transformer-lens', theirs: 'ln_final.hook_out', ours: 'hook_norm_f', layout: 'same' },
  { source: 'transformer-lens', theirs: 'unembed.hook_out', ours: 'hook_logits', layout: 'same' },
  // MambaLens HookedMamba (mamba_lens/HookedMamba.py): block hooks sit directly under blocks.{i}
  { source: 'mamba-lens', theirs: 'hook_embed', ours: 'hook_embed', layout: 'same' },
  { source: 'mamba-lens', theirs: 'blocks.{i}.hook_resid_pre', ours: 'blocks.{i}.hook_resid_pre', layout: 'same' },
  {
    source: 'mamba-lens',
    theirs: 'blocks.{i}.hook_layer_input',
    ours: 'blocks.{i}.hook_resid_pre',
    layout: 'same',
    note: 'the same values; theirs is a copy that feeds only the norm, so a replacement there skips the residual add, ours does not',
  },
  { source: 'mamba-lens', theirs: 'blocks.{i}.hook_normalized_input', ours: 'blocks.{i}.hook_norm', layout: 'same' },
  { source: 'mamba-lens', theirs: 'blocks.{i}.hook_skip', ours: 'blocks.{i}.mixer.hook_z', layout: 'same' },
  {
    source: 'mamba-lens',
    theirs: 'blocks.{i}.hook_in_proj',
    ours: 'blocks.{i}.mixer.hook_x',
    layout: 'same',
    note: 'theirs is the x half [b, T, E]; our hook_in_proj is both halves [b, T, 2E]',
  },
  { source: 'mamba-lens', theirs: 'blocks.{i}.hook_conv', ours: 'blocks.{i}.mixer.hook_conv', layout: 'same' },
  { source: 'mamba-lens', theirs: 'blocks.{i}.hook_ssm_input', ours: 'blocks.{i}.mixer.hook_conv_act', layout: 'same' },
  { source: 'mamba-lens', theirs: 'blocks.{i}.hook_delta_1', ours: 'blocks.{i}.mixer.hook_x_proj', layout: 'dt-rank-columns' },
  { source: 'mamba-lens', theirs: 'blocks.{i}.hook_delta_2', ours: 'blocks.{i}.mixer.hook_dt', layout: 'same' },
  { source: 'mamba-lens', theirs: 'blocks.{i}.hook_delta', ours: 'blocks.{i}.mixer.hook_delta', layout: 'same' },
  { source: 'mamba-lens', theirs: 'blocks.{i}.hook_B', ours: 'blocks.{i}.mixer.hook_B', layout: 'same' },
  { source: 'mamba-lens', theirs: 'blocks.{i}.hook_C', ours: 'blocks.{i}.mixer.hook_C', layout: 'same' },
  { source: 'mamba-lens', theirs: 'blocks.{i}.hook_h.{t}', ours: 'blocks.{i}.mixer.hook_h', layout: 'state-at-position' },
  { source: 'mamba-lens', theirs: 'blocks.{i}.hook_ssm_output', ours: 'blocks.{i}.mixer.hook_ssm_out', layout: 'same' },
  { source: 'mamba-lens', theirs: 'blocks.{i}.hook_after_skip', ours: 'blocks.{i}.mixer.hook_gated', layout: 'same' },
  { source: 'mamba-lens', theirs: 'blocks.{i}.hook_out_proj', ours: 'blocks.{i}.hook_mixer_out', layout: 'same' },
  { source: 'mamba-lens', theirs: 'blocks.{i}.hook_resid_post', ours: 'blocks.{i}.hook_resid_post', layout: 'same' },
  { source: 'mamba-lens', theirs: 'hook_norm', ours: 'hook_norm_f', layout: 'same', note: 'their model-level hook_norm is the final norm' },
  { source: 'mamba-lens', theirs: 'hook_logits', ours: 'hook_logits', layout: 'same' },
  ...['hook_h_start', 'hook_A', 'hook_A_bar', 'hook_B_bar', 'hook_y'].map(
    (h): HookAlias => ({
      source: 'mamba-lens',
      theirs: `blocks.{i}.${h}`,
      ours: null,
      layout: 'same',
      note: {
        hook_h_start: 'the initial state is always zero here',
        hook_A: 'A = -exp(A_log) is a weight here, not an activation',
        hook_A_bar: 'exp(delta A) is not materialised: compute it from hook_delta and A_log',
        hook_B_bar: 'delta B is not materialised: compute it from hook_delta and hook_B',
        hook_y: 'C.h without D*u has no hook point: hook_ssm_out - D * hook_conv_act',
      }[h],
    }),
  ),
];

export interface ResolvedHook {
  /** our hook name */
  name: string;
  /** whose name it was read as */
  source: HookSource;
  layout: HookLayout;
  /** state-at-position: the position, for a hook_h hook with positions: [position] */
  position?: number;
  note?: string;
  /** set when the name also means something else in another library */
  clash?: string;
}

const BLOCK_HOOKS = ['hook_resid_pre', 'hook_norm', 'hook_mixer_out', 'hook_resid_post'];
const OURS = new RegExp(
  `^(hook_embed|hook_norm_f|hook_logits|blocks\\.\\d+\\.(${BLOCK_HOOKS.join('|')})|blocks\\.\\d+\\.mixer\\.(${MIXER_HOOKS.join('|')}))$`,
);

const compiled = HOOK_ALIASES.map((a) => ({
  alias: a,
  re: new RegExp(`^${a.theirs.replaceAll('.', '\\.').replace('{i}', '(?<i>\\d+)').replace('{t}', '(?<t>\\d+)')}$`),
}));

/**
 * Our hook name for `name`, which may be ours, TransformerLens's Mamba bridge's or MambaLens's.
 * Without `source`, our own names win (see the clashes above: `clash` then says what the other
 * library means by it); with `source`, the name is read as that library's.
 */
export function resolveHookName(name: string, opts: { source?: HookSource } = {}): ResolvedHook {
  const { source } = opts;
  const matches = compiled.flatMap(({ alias, re }) => {
    const m = re.exec(name);
    return m ? [{ alias, i: m.groups?.i, t: m.groups?.t }] : [];
  });
  const differ = matches.filter((m) => m.alias.ours?.replace('{i}', m.i ?? '') !== name || m.alias.layout !== 'same');
  if ((source === undefined || source === 'mamba-interp') && OURS.test(name)) {
    const other = differ[0];
    return {
      name,
      source: 'mamba-interp',
      layout: 'same',
      ...(other
        ? {
            clash: `in ${other.alias.source}, '${name}' is our ${other.alias.ours?.replace('{i}', other.i ?? '')} (${other.alias.layout}): ${other.alias.note}`,
          }
        : {}),
    };
  }
  if (source === 'mamba-interp') throw new Error(`resolveHookName: '${name}' is not one of this project's hook names (mamba/hooks.ts)`);
  const hit = matches.find((m) => source === undefined || m.alias.source === source);
  if (!hit) {
    const whose = source ?? "this project's, TransformerLens's Mamba bridge or MambaLens";
    throw new Error(`resolveHookName: unknown hook name '${name}' (not ${whose}; see mamba/hook-aliases.ts)`);
  }
  const { alias, i, t } = hit;
  if (alias.ours === null) throw new Error(`resolveHookName: ${alias.source}'s '${name}' has no counterpart here: ${alias.note}`);
  return {
    name: alias.ours.replace('{i}', i ?? ''),
    source: alias.source,
    layout: alias.layout,
    ...(t !== undefined ? { position: Number(t) } : {}),
    ...(alias.note ? { note: alias.note } : {}),
  };
}

/** [b, E, T, N] <-> [b, T, E, N] (an involution): TransformerLens's hook_ssm_state and our hook_h. */
export function transposeStates(h: Tensor): Tensor {
  if (h.rank !== 4) throw new Error(`transposeStates: expected a rank-4 state tensor, got [${h.shape}]`);
  return mi.transpose(h, 1, 2);
}

/**
 * Their tensor `t` of a resolved hook in our layout; `seqLen` (T) is needed for the untrimmed conv.
 * MambaLens's hook_delta_1 is only part of ours (its first dt_rank columns), so it has no conversion.
 */
export function toOurLayout(r: ResolvedHook, t: Tensor, opts: { seqLen?: number } = {}): Tensor {
  switch (r.layout) {
    case 'same':
    case 'state-at-position':
      return t;
    case 'channel-first':
      return mi.transpose(t, 1, 2);
    case 'channel-first-untrimmed': {
      if (opts.seqLen === undefined) throw new Error(`toOurLayout ${r.name}: the untrimmed conv output needs seqLen`);
      return mi.transpose(mi.slice(t, 2, 0, opts.seqLen), 1, 2);
    }
    case 'dt-rank-columns':
      throw new Error(`toOurLayout ${r.name}: MambaLens's hook_delta_1 is the first dt_rank columns of ours; slice ours instead`);
  }
}
