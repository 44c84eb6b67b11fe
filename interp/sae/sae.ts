// Sparse autoencoders (SAEs) over model activations, trained with the engine's own autograd.
//
// Two architectures, both with a pre-encoder bias b_dec subtracted from the input and decoder
// directions kept at unit norm (so a latent's activation is the length of its contribution):
//  - 'relu'  (Anthropic, "Towards Monosemanticity"): z = ReLU((x - b_dec) W_enc + b_enc), loss =
//            ||x - x̂||² + l1 * sum(z). Dead latents are *resampled* periodically (resampleDead in sae-train.ts).
//  - 'topk'  (Gao et al. 2024): keep the k largest pre-activations (then ReLU), loss = ||x - x̂||²
//            + auxCoef * d * AuxK (Gao et al.'s weighting, the MSE here being per token), where AuxK reconstructs the residual from the top auxK *dead* latents,
//            giving dead latents a gradient. TopK needs no L1 and no resampling.
//  - 'jumprelu' (Rajamanoharan et al. 2024), loaded only (interp/sae/saelens.ts; not trained here):
//            z = ReLU(pre) where pre > threshold (per latent), else 0, as SAELens's JumpReLUSAE.
// x̂ = z W_dec + b_dec. Training and reconstruction run the engine's fused op (mi.sparseAutoencoder:
// encode, ReLU or TopK, decode and the per-row loss in one kernel, whose TopK backward touches only
// the active latents) where it is the faster path (fusedByDefault); encodeNormalised /
// decodeNormalised are the same maths composed of plain ops.
// Parameter layout follows SAELens: W_enc [d, latents], b_enc [latents],
// W_dec [latents, d] (row i = latent i's decoder direction, a "column" in Anthropic's notation),
// b_dec [d]. Parameters live in normalised units: inputs are multiplied by inputScale, chosen so
// that E[||x||²] = d over the training data; encode() applies it and decode() undoes it.
import * as mi from '../../engine/index.ts';
import type { Tensor } from '../../engine/index.ts';
import type { TensorSource } from '../../mamba/safetensors-format.ts';

export type SaeKind = 'relu' | 'topk' | 'jumprelu';

export interface SaeConfig {
  kind: SaeKind;
  /** input width */
  d: number;
  latents: number;
  /** topk: latents kept per token */
  k?: number;
  /** multiply raw inputs by this before encoding (E[||x * inputScale||²] = d on the training data) */
  inputScale: number;
}

export interface SaeParams {
  W_enc: Tensor;
  b_enc: Tensor;
  W_dec: Tensor;
  b_dec: Tensor;
  /** jumprelu only: per-latent threshold [latents] on the pre-activation */
  threshold?: Tensor;
}
export const SAE_PARAM_NAMES = ['W_enc', 'b_enc', 'W_dec', 'b_dec'] as const;

/** A point of the training curve (all in normalised units, means over the batch). */
export interface SaeLogEntry {
  step: number;
  loss: number;
  /** ||x - x̂||² per token */
  mse: number;
  /** l1 * sum(z) (relu) or auxCoef * d * AuxK (topk) */
  penalty: number;
  /** latents active per token */
  l0: number;
  /** fraction of latents not fired over the last deadWindow tokens */
  deadFraction: number;
}

export class Sae {
  readonly config: SaeConfig;
  readonly params: SaeParams;
  /** training curve, one entry per step (empty for an SAE that was loaded, not trained) */
  history: SaeLogEntry[] = [];
  /** for each latent, training tokens seen since it last fired (all 0 for a loaded SAE) */
  tokensSinceFired: Float64Array;
  /** the window of tokens used to call a latent dead */
  deadWindow = Infinity;

  constructor(config: SaeConfig, params: SaeParams) {
    const { d, latents, kind, k } = config;
    const want: Record<(typeof SAE_PARAM_NAMES)[number], number[]> = {
      W_enc: [d, latents],
      b_enc: [latents],
      W_dec: [latents, d],
      b_dec: [d],
    };
    for (const name of SAE_PARAM_NAMES) {
      const t = params[name];
      if (t.shape.length !== want[name].length || t.shape.some((s, i) => s !== want[name][i])) {
        throw new Error(`Sae: ${name} has shape [${t.shape}], expected [${want[name]}] for d=${d}, latents=${latents}`);
      }
    }
    if (kind === 'jumprelu' && !(params.threshold?.shape.length === 1 && params.threshold.shape[0] === latents)) {
      throw new Error(
        `Sae: jumprelu needs a threshold of shape [${latents}], got ${params.threshold ? `[${params.threshold.shape}]` : 'none'}`,
      );
    }
    if (kind === 'topk' && !(Number.isInteger(k) && k! >= 1 && k! <= latents)) {
      throw new Error(`Sae: topk needs an integer k in [1, ${latents}], got ${k}`);
    }
    if (!(config.inputScale > 0)) throw new Error(`Sae: inputScale must be positive, got ${config.inputScale}`);
    this.config = config;
    this.params = params;
    this.tokensSinceFired = new Float64Array(latents);
  }

  get d(): number {
    return this.config.d;
  }
  get latents(): number {
    return this.config.latents;
  }

  /**
   * Fraction of latents that did not fire over the last deadWindow training tokens; NaN for an SAE
   * that was not trained here (use saeMetrics for the dead fraction on a data set).
   */
  get deadFraction(): number {
    if (!this.history.length) return NaN;
    let dead = 0;
    for (const t of this.tokensSinceFired) if (t >= this.deadWindow) dead++;
    return dead / this.latents;
  }

  /**
   * Latent activations z [..., latents] of raw inputs x [..., d]. TopK runs the fused op (its
   * decode costs k rows of W_dec per row); ReLU the encoder alone (the fused op would also decode
   * densely).
   */
  encode(x: Tensor): Tensor {
    return this.withRows(x, this.d, (rows) => {
      const xn = mi.mul(rows, this.config.inputScale);
      if (this.config.kind !== 'topk') return this.encodeNormalised(xn).z;
      const { values, indices } = this.fused(xn);
      return scatterRows(mi.relu(values!), indices!, this.latents);
    });
  }

  /** Reconstruction x̂ [..., d] in raw units from latents z [..., latents]. */
  decode(z: Tensor): Tensor {
    return this.withRows(z, this.latents, (rows) => mi.div(this.decodeNormalised(rows), this.config.inputScale));
  }

  /** decode(encode(x)): the SAE's reconstruction of x [..., d] (the fused op where fusedByDefault says so). */
  forward(x: Tensor): Tensor {
    return this.withRows(x, this.d, (rows) =>
      mi.div(this.reconstructNormalised(mi.mul(rows, this.config.inputScale)), this.config.inputScale),
    );
  }

  /** The reconstruction of already-normalised rows xn [n, d], by the fused op or the composed ops (fusedByDefault). */
  reconstructNormalised(xn: Tensor): Tensor {
    if (fusedByDefault(this.config.kind, xn.backend)) return this.fused(xn).recon;
    return this.decodeNormalised(this.encodeNormalised(xn).z);
  }

  /**
   * The fused op (engine/ops/sae.ts) on already-normalised rows xn [n, d]: latents (relu: z;
   * topk: values and indices), reconstruction, per-row loss ||x̂ - x||² + l1 * sum(z), and with
   * dead + kAux (topk) the AuxK selection and its per-row loss.
   */
  fused(xn: Tensor, opts: { l1?: number; dead?: Tensor; kAux?: number } = {}): mi.SparseAutoencoderOutputs {
    const { W_enc, b_enc, W_dec, b_dec } = this.params;
    const kind = this.config.kind;
    if (kind === 'jumprelu') throw new Error('Sae.fused: the fused kernel has no JumpReLU; use encodeNormalised / decodeNormalised');
    return mi.sparseAutoencoder({ x: xn, W_enc, b_enc, W_dec, b_dec, kind, k: this.config.k, ...opts });
  }

  /** Flattens leading axes to rows [n, width], applies f, and restores them. */
  private withRows(x: Tensor, width: number, f: (rows: Tensor) => Tensor): Tensor {
    if (x.rank < 1 || x.shape[x.rank - 1] !== width) {
      throw new Error(`Sae: input of shape [${x.shape}] does not end in width ${width}`);
    }
    const lead = x.shape.slice(0, -1);
    return mi.tidy(() => {
      const y = f(mi.reshape(x, [-1, width]));
      return mi.reshape(y, [...lead, y.shape[1]]);
    });
  }

  /** Pre-activations and latents of already-normalised rows xn [n, d], composed of plain ops. */
  encodeNormalised(xn: Tensor): { pre: Tensor; z: Tensor } {
    const { W_enc, b_enc, b_dec } = this.params;
    const pre = mi.add(mi.matmul(mi.sub(xn, b_dec), W_enc), b_enc);
    if (this.config.kind === 'relu') return { pre, z: mi.relu(pre) };
    if (this.config.kind === 'jumprelu') {
      // SAELens: ReLU(pre) * (pre > threshold); sign(pre - threshold) is 1 exactly where pre > threshold
      const above = mi.relu(mi.sign(mi.sub(pre, this.params.threshold!)));
      return { pre, z: mi.where(above, mi.relu(pre), 0) };
    }
    const { values, indices } = mi.topk(pre, this.config.k!);
    return { pre, z: scatterRows(mi.relu(values), indices, this.latents) };
  }

  /** Normalised reconstruction of latents z [n, latents]. */
  decodeNormalised(z: Tensor): Tensor {
    return mi.add(mi.matmul(z, this.params.W_dec), this.params.b_dec);
  }

  /**
   * The parameters as plain arrays, SAELens-style names and layout, with a config block. With
   * foldScale the input scaling is folded into the weights (W_enc * s, W_dec / s, b_dec / s), so the
   * exported SAE works on raw activations with no scaling step (its decoder rows then have norm 1/s).
   */
  async exportParams(opts: { foldScale?: boolean } = {}): Promise<SaeExport> {
    const s = opts.foldScale ? this.config.inputScale : 1;
    const factor: Record<(typeof SAE_PARAM_NAMES)[number], number> = { W_enc: s, b_enc: 1, W_dec: 1 / s, b_dec: 1 / s };
    const tensors = {} as SaeExport['tensors'];
    for (const name of SAE_PARAM_NAMES) {
      const t = this.params[name];
      const data = Float32Array.from(await t.data(), (v) => v * factor[name]);
      tensors[name] = { dtype: 'float32', shape: [...t.shape], data };
    }
    // the threshold compares pre-activations, which folding the scale leaves unchanged
    if (this.params.threshold)
      tensors.threshold = { dtype: 'float32', shape: [this.latents], data: Float32Array.from(await this.params.threshold.data()) };
    return {
      config: {
        architecture: ARCHITECTURE[this.config.kind],
        d_in: this.d,
        d_sae: this.latents,
        ...(this.config.k ? { k: this.config.k } : {}),
        normalize_activations: opts.foldScale ? 'none' : 'expected_average_only_in',
        scaling_factor: opts.foldScale ? 1 : this.config.inputScale,
      },
      tensors,
    };
  }

  /** An SAE from exportParams() output (or its JSON round trip, where data are number arrays). */
  static fromExport(e: SaeExport | SaeExportJson, backend?: mi.Backend): Sae {
    const c = e.config;
    const kind = (Object.keys(ARCHITECTURE) as SaeKind[]).find((k) => ARCHITECTURE[k] === c.architecture);
    if (!kind) fail(`Sae.fromExport: unknown architecture '${c.architecture}'`);
    const params = {} as SaeParams;
    const names = kind === 'jumprelu' ? [...SAE_PARAM_NAMES, 'threshold' as const] : SAE_PARAM_NAMES;
    for (const name of names) {
      const t = e.tensors[name];
      if (!t) throw new Error(`Sae.fromExport: tensor ${name} is missing`);
      params[name] = mi.keep(mi.tensor(Float32Array.from(t.data), t.shape, { backend }));
    }
    return new Sae({ kind, d: c.d_in, latents: c.d_sae, k: c.k, inputScale: c.scaling_factor }, params);
  }

  dispose(): void {
    for (const name of SAE_PARAM_NAMES) this.params[name].dispose();
    this.params.threshold?.dispose();
  }
}

/** SAELens's cfg.json `architecture` of each kind. */
export const ARCHITECTURE: Record<SaeKind, string> = { relu: 'standard', topk: 'topk', jumprelu: 'jumprelu' };

/**
 * Whether the fused op runs an SAE's training and reconstruction on `backend` by default: TopK on
 * every backend (its sparse backward beats the composed ops on the CPU too: 18 vs 37 ms a step at
 * d 64, 256 latents, k 8, batch 256), ReLU on WebGPU. On the CPU backend ReLU stays composed: its
 * dense matmuls run on the WebAssembly SIMD kernels there, while the fused CPU kernel is scalar
 * TypeScript (70 vs 17 ms a step at that shape).
 */
export function fusedByDefault(kind: SaeKind, backend: mi.Backend): boolean {
  if (kind === 'jumprelu') return false;
  return kind === 'topk' || backend.name !== 'cpu';
}

export interface SaeExportConfig {
  architecture: string;
  d_in: number;
  d_sae: number;
  k?: number;
  normalize_activations: 'none' | 'expected_average_only_in';
  /** multiply raw activations by this before encoding; divide reconstructions by it */
  scaling_factor: number;
}
type ExportTensors<D> = Record<(typeof SAE_PARAM_NAMES)[number], { dtype: 'float32'; shape: number[]; data: D }> & {
  threshold?: { dtype: 'float32'; shape: number[]; data: D };
};
export interface SaeExport {
  config: SaeExportConfig;
  tensors: ExportTensors<Float32Array>;
}
export interface SaeExportJson {
  config: SaeExportConfig;
  tensors: ExportTensors<number[]>;
}

/**
 * An SAE from a safetensors file as io.ts's saveSae writes it (the config in the string metadata),
 * already opened: a file on disk (io.ts) or a fetched buffer (the explorer page). `where` begins
 * every error message.
 */
export async function saeFromSafetensors(
  f: Pick<TensorSource, 'read'> & { readonly metadata: Record<string, string> | undefined },
  where: string,
  backend?: mi.Backend,
): Promise<Sae> {
  const m = f.metadata;
  if (!m?.architecture || !m.d_in || !m.d_sae || !m.scaling_factor)
    throw new Error(`${where}: metadata lacks architecture, d_in, d_sae or scaling_factor`);
  const tensors = {} as SaeExport['tensors'];
  for (const name of SAE_PARAM_NAMES) {
    const rec = await f.read(name);
    if (!(rec.data instanceof Float32Array)) throw new Error(`${where}: ${name} is ${rec.dtype}, expected F32`);
    tensors[name] = { dtype: 'float32', shape: rec.shape, data: rec.data };
  }
  return Sae.fromExport(
    {
      config: {
        architecture: m.architecture,
        d_in: Number(m.d_in),
        d_sae: Number(m.d_sae),
        ...(m.k ? { k: Number(m.k) } : {}),
        normalize_activations: m.normalize_activations === 'none' ? 'none' : 'expected_average_only_in',
        scaling_factor: Number(m.scaling_factor),
      },
      tensors,
    },
    backend,
  );
}

/** exportParams() output with plain number arrays, for JSON.stringify. */
export function exportToJson(e: SaeExport): SaeExportJson {
  const tensors = {} as SaeExportJson['tensors'];
  for (const name of SAE_PARAM_NAMES) tensors[name] = { ...e.tensors[name], data: Array.from(e.tensors[name].data) };
  if (e.tensors.threshold) tensors.threshold = { ...e.tensors.threshold, data: Array.from(e.tensors.threshold.data) };
  return { config: { ...e.config }, tensors };
}

function fail(message: string): never {
  throw new Error(message);
}

/**
 * A dense [rows, width] tensor holding values [rows, k] at the int32 column indices [rows, k] and
 * zeros elsewhere; differentiable in values (scatter-add's adjoint is a gather).
 */
export function scatterRows(values: Tensor, indices: Tensor, width: number): Tensor {
  const [rows, k] = values.shape;
  const rowStart = mi.mul(mi.reshape(mi.arange(rows, { backend: indices.backend }), [rows, 1]), width);
  const flat = mi.reshape(mi.add(indices, rowStart), [rows * k]);
  return mi.reshape(mi.scatterAdd(mi.reshape(values, [rows * k, 1]), flat, [rows * width, 1]), [rows, width]);
}
