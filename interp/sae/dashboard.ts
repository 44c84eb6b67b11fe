// Feature dashboards: for each SAE latent, what a dashboard page shows (Anthropic's feature
// browser, SAEDashboard, Neuronpedia): activation density and a histogram of the non-zero
// activations, the top-activating contexts with every neighbour's activation, examples from
// quantile intervals of the activation, the decoder direction's top positive and negative logits
// through the unembedding, and the variables the latent correlates with.
//
// The export (neuronpediaBatch) follows the batch JSON that SAEDashboard's NeuronpediaRunner
// writes and Neuronpedia imports (sae_dashboard/neuronpedia: `batch-N.json`, a `features` list of
// NeuronpediaDashboardFeature): see the field mapping on neuronpediaFeature.
import { encodeAll, latentCorrelations, type ActivationRows } from './analysis.ts';
import type { Sae } from './sae.ts';

/** A per-row variable to correlate latents with: defined on `rows` (all rows when absent), `values` there. */
export interface DashboardVariable {
  name: string;
  rows?: ArrayLike<number>;
  values: ArrayLike<number>;
}

export interface DashboardInput {
  sae: Sae;
  /** the activations at the SAE's hook, rows [n, d] (n = sequences x seqLen, row = sequence * seqLen + position) */
  acts: ActivationRows;
  /** the token id of each row [n] */
  inputs: ArrayLike<number>;
  seqLen: number;
  /** a token id's string (a tokenizer's); without it the id's decimal */
  tokenString?: (id: number) => string;
  /**
   * The unembedding: `W_U` the output head's rows [V, d] (MambaLM.lmHead()), `normWeight` the final
   * RMSNorm's weight [d], folded in (W_U' = W_U * weight). The norm's scale 1/rms is not recomputed:
   * a direction has no rms of its own, so the logits are those of the direction added to a residual
   * of unit rms, as SAEDashboard and Neuronpedia compute W_dec[j] @ W_U after folding the norm.
   */
  unembed?: { W_U: Float32Array; vocab: number; normWeight?: Float32Array };
  variables?: DashboardVariable[];
}

export interface DashboardOptions {
  /** latents to describe (default all) */
  latents?: number[];
  /** top-activating contexts per latent */
  topK?: number;
  /** context window: tokens before and after the firing position */
  before?: number;
  after?: number;
  /** quantile intervals of the non-zero activations, and examples drawn from each */
  quantiles?: number;
  perQuantile?: number;
  histogramBins?: number;
  /** top positive and negative logits */
  logits?: number;
  /** one-hot token-identity variables for this many most frequent tokens */
  frequentTokens?: number;
  /** correlates kept per latent (by |r|) */
  correlates?: number;
}

export interface DashboardContext {
  sequence: number;
  position: number;
  /** the firing token's activation */
  activation: number;
  /** the window's first position in the sequence, and per window token its id, string and the latent's activation */
  start: number;
  tokens: number[];
  strings: string[];
  values: number[];
  /** index of the firing token in the window */
  index: number;
}

export interface QuantileInterval {
  /** activation range [lo, hi] (hi included in the last interval) */
  lo: number;
  hi: number;
  /** fraction of the non-zero activations in this interval */
  fraction: number;
  examples: DashboardContext[];
}

export interface LatentDashboard {
  latent: number;
  /** fraction of rows the latent is active on (> 0), and SAELens' log10(density + 1e-10) */
  density: number;
  log10Density: number;
  maxActivation: number;
  /** histogram of the non-zero activations: equal-width bins from 0 to the max, bin centres and counts */
  histogram: { centres: number[]; counts: number[]; width: number };
  top: DashboardContext[];
  quantiles: QuantileInterval[];
  /** W_dec[j] @ W_U' (raw units: the decoder row divided by the SAE's input scale); null without an unembedding */
  logits: {
    positive: { token: number; string: string; value: number }[];
    negative: { token: number; string: string; value: number }[];
  } | null;
  /** Pearson r with each variable, strongest |r| first */
  correlates: { variable: string; r: number }[];
}

export interface SaeDashboard {
  latents: LatentDashboard[];
  rows: number;
  /** how the logits were computed, and how quantile examples were drawn */
  notes: string[];
}

/** The dashboards of an SAE's latents over held-out rows. */
export async function saeDashboard(input: DashboardInput, opts: DashboardOptions = {}): Promise<SaeDashboard> {
  const { sae, inputs, seqLen } = input;
  const L = sae.latents;
  const n = inputs.length;
  if (!(seqLen >= 1 && n % seqLen === 0)) throw new Error(`saeDashboard: ${n} rows are not whole sequences of ${seqLen}`);
  const z = await encodeAll(sae, input.acts);
  if (z.length !== n * L) throw new Error(`saeDashboard: activations give ${z.length / L} rows, inputs ${n}`);
  const o = {
    topK: 10,
    before: 8,
    after: 3,
    quantiles: 4,
    perQuantile: 3,
    histogramBins: 20,
    logits: 10,
    frequentTokens: 10,
    correlates: 8,
    ...opts,
  };
  const str = input.tokenString ?? ((id: number) => String(id));
  const latents = opts.latents ?? Array.from({ length: L }, (_, j) => j);
  for (const j of latents)
    if (!(Number.isInteger(j) && j >= 0 && j < L)) throw new Error(`saeDashboard: latent ${j} out of range [0, ${L})`);
  const variables = [...(input.variables ?? []), ...tokenVariables(inputs, o.frequentTokens, str)];
  const correlations = variables.map((v) => correlationsOf(z, L, v, n));
  const logitsOf = input.unembed ? await decoderLogits(sae, input.unembed) : null;

  const context = (row: number): DashboardContext => {
    const sequence = Math.floor(row / seqLen),
      position = row % seqLen;
    const start = Math.max(0, position - o.before),
      end = Math.min(seqLen - 1, position + o.after);
    const tokens: number[] = [],
      values: number[] = [];
    for (let p = start; p <= end; p++) {
      const r = sequence * seqLen + p;
      tokens.push(inputs[r]);
      values.push(z[r * L + latent]);
    }
    return {
      sequence,
      position,
      activation: z[row * L + latent],
      start,
      tokens,
      strings: tokens.map(str),
      values,
      index: position - start,
    };
  };
  let latent = 0;
  const out: LatentDashboard[] = [];
  for (const j of latents) {
    latent = j;
    // the active rows, strongest first (ties: lower row)
    const active: number[] = [];
    for (let r = 0; r < n; r++) if (z[r * L + j] > 0) active.push(r);
    active.sort((a, b) => z[b * L + j] - z[a * L + j] || a - b);
    const density = active.length / n;
    const max = active.length ? z[active[0] * L + j] : 0;
    out.push({
      latent: j,
      density,
      log10Density: Math.log10(density + 1e-10),
      maxActivation: max,
      histogram: histogram(
        active.map((r) => z[r * L + j]),
        max,
        o.histogramBins,
      ),
      top: active.slice(0, o.topK).map(context),
      quantiles: quantileExamples(active, (r) => z[r * L + j], o.quantiles, o.perQuantile).map((q) => ({
        ...q,
        examples: q.rows.map(context),
      })),
      logits: logitsOf ? topLogits(logitsOf(j), o.logits, str) : null,
      correlates: variables
        .map((v, i) => ({ variable: v.name, r: correlations[i][j] }))
        .filter((c) => c.r !== 0)
        .sort((a, b) => Math.abs(b.r) - Math.abs(a.r) || a.variable.localeCompare(b.variable))
        .slice(0, o.correlates),
    });
  }
  return {
    latents: out,
    rows: n,
    notes: [
      'logits: W_dec[j] / input scale (raw units) @ (W_U * norm_f.weight)^T, the final RMSNorm weight folded in and its 1/rms scale not recomputed (as SAEDashboard / Neuronpedia)',
      `quantile examples: the non-zero activations split into ${o.quantiles} intervals at their quantiles, ${o.perQuantile} examples evenly spaced through each interval's rows (by activation)`,
      `correlates: Pearson r over the rows each variable is defined on; token=<s> is the one-hot of the ${o.frequentTokens} most frequent input tokens`,
    ],
  };
}

/** One-hot variables for the `count` most frequent tokens (ties: lower id). */
function tokenVariables(inputs: ArrayLike<number>, count: number, str: (id: number) => string): DashboardVariable[] {
  const freq = new Map<number, number>();
  for (let r = 0; r < inputs.length; r++) freq.set(inputs[r], (freq.get(inputs[r]) ?? 0) + 1);
  const ids = [...freq].sort((a, b) => b[1] - a[1] || a[0] - b[0]).slice(0, count);
  return ids.map(([id]) => ({
    name: `token=${str(id)}`,
    values: Float64Array.from({ length: inputs.length }, (_, r) => (inputs[r] === id ? 1 : 0)),
  }));
}

function correlationsOf(z: Float32Array, L: number, v: DashboardVariable, n: number): Float64Array {
  if (!v.rows) {
    if (v.values.length !== n) throw new Error(`saeDashboard: variable ${v.name} has ${v.values.length} values for ${n} rows`);
    return latentCorrelations(z, L, v.values);
  }
  if (v.rows.length !== v.values.length)
    throw new Error(`saeDashboard: variable ${v.name} has ${v.rows.length} rows and ${v.values.length} values`);
  const sub = new Float32Array(v.rows.length * L);
  for (let i = 0; i < v.rows.length; i++) sub.set(z.subarray(v.rows[i] * L, (v.rows[i] + 1) * L), i * L);
  return latentCorrelations(sub, L, v.values);
}

function histogram(values: number[], max: number, bins: number): LatentDashboard['histogram'] {
  const width = max > 0 ? max / bins : 0;
  const counts = new Array<number>(max > 0 ? bins : 0).fill(0);
  if (max > 0) for (const v of values) counts[Math.min(bins - 1, Math.floor(v / width))]++;
  return { centres: counts.map((_, i) => (i + 0.5) * width), counts, width };
}

/** `active` sorted by activation descending; intervals ascending by activation, each with its chosen rows. */
function quantileExamples(
  active: number[],
  act: (row: number) => number,
  q: number,
  per: number,
): { lo: number; hi: number; fraction: number; rows: number[] }[] {
  if (!active.length) return [];
  const asc = [...active].reverse();
  const out = [];
  for (let i = 0; i < q; i++) {
    const a = Math.floor((i * asc.length) / q),
      b = Math.floor(((i + 1) * asc.length) / q);
    if (b <= a) continue;
    const slice = asc.slice(a, b);
    const k = Math.min(per, slice.length);
    const rows = Array.from({ length: k }, (_, e) => slice[Math.floor(((e + 0.5) * slice.length) / k)]);
    out.push({ lo: act(slice[0]), hi: act(slice[slice.length - 1]), fraction: slice.length / asc.length, rows });
  }
  return out;
}

/** j -> the logits [V] of latent j's decoder direction (float64 accumulation). */
async function decoderLogits(sae: Sae, u: NonNullable<DashboardInput['unembed']>): Promise<(j: number) => Float64Array> {
  const d = sae.d;
  if (u.W_U.length !== u.vocab * d) throw new Error(`saeDashboard: unembedding has ${u.W_U.length} values, expected [${u.vocab}, ${d}]`);
  if (u.normWeight && u.normWeight.length !== d)
    throw new Error(`saeDashboard: norm weight has ${u.normWeight.length} values, expected ${d}`);
  const W = await sae.params.W_dec.data();
  const s = sae.config.inputScale;
  return (j) => {
    const out = new Float64Array(u.vocab);
    for (let v = 0; v < u.vocab; v++) {
      let acc = 0;
      for (let i = 0; i < d; i++) acc += (W[j * d + i] / s) * (u.normWeight ? u.normWeight[i] : 1) * u.W_U[v * d + i];
      out[v] = acc;
    }
    return out;
  };
}

function topLogits(logits: Float64Array, count: number, str: (id: number) => string): NonNullable<LatentDashboard['logits']> {
  const ids = Array.from(logits, (_, v) => v).sort((a, b) => logits[b] - logits[a] || a - b);
  const item = (v: number) => ({ token: v, string: str(v), value: logits[v] });
  const k = Math.min(count, ids.length);
  return {
    positive: ids.slice(0, k).map(item),
    negative: ids
      .slice(ids.length - k)
      .reverse()
      .map(item),
  };
}

/**
 * One latent in the layout of SAEDashboard's NeuronpediaDashboardFeature (Neuronpedia's feature
 * JSON). Mapping: feature_index = latent; frac_nonzero = density; freq_hist_data_bar_values /
 * _heights = histogram centres / counts (parallel arrays); pos_str / pos_values, neg_str /
 * neg_values = logits; activations = top contexts (bin_min -1, as SAEDashboard marks its top
 * group) then each quantile interval's examples (bin_min / bin_max its range, bin_contains its
 * fraction), each with tokens (strings), values and qualifying_token_index; maxActApprox = the
 * max activation. Fields Neuronpedia lacks are kept under names of ours: log10_density,
 * correlated_variables ({variable, pearson}), and per activation sequence / start / token_ids.
 */
export function neuronpediaFeature(f: LatentDashboard): NeuronpediaFeatureJson {
  const act = (c: DashboardContext, bin: { bin_min: number; bin_max: number; bin_contains: number }) => ({
    ...bin,
    tokens: c.strings,
    token_ids: c.tokens,
    values: c.values,
    qualifying_token_index: c.index,
    sequence: c.sequence,
    start: c.start,
  });
  return {
    feature_index: f.latent,
    maxActApprox: f.maxActivation,
    frac_nonzero: f.density,
    log10_density: f.log10Density,
    freq_hist_data_bar_values: f.histogram.centres,
    freq_hist_data_bar_heights: f.histogram.counts,
    pos_str: f.logits?.positive.map((x) => x.string) ?? [],
    pos_values: f.logits?.positive.map((x) => x.value) ?? [],
    neg_str: f.logits?.negative.map((x) => x.string) ?? [],
    neg_values: f.logits?.negative.map((x) => x.value) ?? [],
    activations: [
      ...f.top.map((c) => act(c, { bin_min: -1, bin_max: f.maxActivation, bin_contains: -1 })),
      ...f.quantiles.flatMap((q) => q.examples.map((c) => act(c, { bin_min: q.lo, bin_max: q.hi, bin_contains: q.fraction }))),
    ],
    correlated_variables: f.correlates.map((c) => ({ variable: c.variable, pearson: c.r })),
  };
}

/** One example of a feature in the batch file (SAEDashboard's activation dict, plus token_ids, sequence, start). */
export interface NeuronpediaActivationJson {
  bin_min: number;
  bin_max: number;
  bin_contains: number;
  tokens: string[];
  token_ids: number[];
  values: number[];
  qualifying_token_index: number;
  sequence: number;
  start: number;
}
export interface NeuronpediaFeatureJson {
  feature_index: number;
  maxActApprox: number;
  frac_nonzero: number;
  log10_density: number;
  freq_hist_data_bar_values: number[];
  freq_hist_data_bar_heights: number[];
  pos_str: string[];
  pos_values: number[];
  neg_str: string[];
  neg_values: number[];
  activations: NeuronpediaActivationJson[];
  correlated_variables: { variable: string; pearson: number }[];
}
export interface NeuronpediaBatchJson {
  model_id: string;
  layer: string;
  sae_set: string;
  rows: number;
  notes: string[];
  features: NeuronpediaFeatureJson[];
}

/** A whole SAE as one Neuronpedia batch file: { model_id, layer, sae_set, features, notes }. */
export function neuronpediaBatch(d: SaeDashboard, meta: { modelId: string; layer: string; saeSet: string }): NeuronpediaBatchJson {
  return {
    model_id: meta.modelId,
    layer: meta.layer,
    sae_set: meta.saeSet,
    rows: d.rows,
    notes: d.notes,
    features: d.latents.map(neuronpediaFeature),
  };
}
