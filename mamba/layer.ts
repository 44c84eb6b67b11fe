// One layer of the backbone as transformers' MambaBlock holds it: the RMSNorm weight in front of
// the mixer and MambaMixer's parameters (in_proj, conv1d, x_proj, dt_proj, A_log, D, out_proj),
// with the sizes its forward splits by. The parallel forward (MambaLM's mixer, mamba/model.ts)
// and recurrent decoding (step, mamba/recurrent.ts) both read a layer through this view, so the
// parameter names, the splits and A = -exp(A_log) are written once, here (the names and shapes a
// checkpoint holds are listed by layerParameterShapes in mamba/config.ts).
import * as mi from '../engine/index.ts';
import type { Tensor } from '../engine/index.ts';
import { layerPrefix, type LayerParameter, type MambaConfig } from './config.ts';

/** A linear (or conv) module's parameters; bias null where the config has none. */
export interface LinearParams {
  weight: Tensor;
  bias: Tensor | null;
}

export class MambaLayer {
  /** [d] RMSNorm weight applied before the mixer */
  readonly norm: Tensor;
  /** [2E,d] (bias [2E] with use_bias): h -> x and z */
  readonly in_proj: LinearParams;
  /** [E,1,K] depthwise causal conv over x (bias [E] with use_conv_bias) */
  readonly conv1d: LinearParams;
  /** [R+2N,E], no bias: u -> dt (low rank), B, C */
  readonly x_proj: { weight: Tensor };
  /** [E,R] and bias [E]: dt -> delta before the softplus */
  readonly dt_proj: { weight: Tensor; bias: Tensor };
  /** [E,N], A = -exp(A_log) */
  readonly A_log: Tensor;
  /** [E] skip connection D u */
  readonly D: Tensor;
  /** [d,E] (bias [d] with use_bias): gated y -> the layer's output */
  readonly out_proj: LinearParams;
  /** intermediate_size: the x, z, u and y channels */
  readonly E: number;
  /** state_size: the SSM state per channel */
  readonly N: number;
  /** time_step_rank: dt's width before dt_proj */
  readonly R: number;
  /** conv_kernel */
  readonly K: number;

  /** Layer `i` of a model with `config` whose parameters, by Hugging Face name, are `params`. */
  constructor(
    config: MambaConfig,
    readonly index: number,
    params: ReadonlyMap<string, Tensor>,
  ) {
    const prefix = layerPrefix(index);
    const opt = (name: LayerParameter) => params.get(prefix + name) ?? null;
    const get = (name: LayerParameter) => {
      const t = opt(name);
      if (!t) throw new Error(`MambaLM: no parameter ${prefix}${name}`);
      return t;
    };
    this.norm = get('norm.weight');
    this.in_proj = { weight: get('mixer.in_proj.weight'), bias: opt('mixer.in_proj.bias') };
    this.conv1d = { weight: get('mixer.conv1d.weight'), bias: opt('mixer.conv1d.bias') };
    this.x_proj = { weight: get('mixer.x_proj.weight') };
    this.dt_proj = { weight: get('mixer.dt_proj.weight'), bias: get('mixer.dt_proj.bias') };
    this.A_log = get('mixer.A_log');
    this.D = get('mixer.D');
    this.out_proj = { weight: get('mixer.out_proj.weight'), bias: opt('mixer.out_proj.bias') };
    this.E = config.intermediate_size;
    this.N = config.state_size;
    this.R = config.time_step_rank;
    this.K = config.conv_kernel;
  }

  /** in_proj's output [..., 2E] split into x (the conv and SSM branch) and z (the gate), [..., E] each. */
  splitInProj(xz: Tensor): [x: Tensor, z: Tensor] {
    const [x, z] = mi.split(xz, [this.E, this.E], -1);
    return [x, z];
  }

  /** x_proj's output [..., R+2N] split into dt [..., R] (dt_proj's input), B and C [..., N]. */
  splitXProj(xp: Tensor): [dt: Tensor, B: Tensor, C: Tensor] {
    const [dt, B, C] = mi.split(xp, [this.R, this.N, this.N], -1);
    return [dt, B, C];
  }

  /** A = -exp(A_log) [E,N]: negative, so exp(delta A) decays the state. */
  A(): Tensor {
    return mi.neg(mi.exp(this.A_log));
  }
}
