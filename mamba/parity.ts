// Parity with Hugging Face transformers: recomputes every tensor of a golden file (see
// ../shared/fixtures/hf-mamba/README.md) with this project's model and compares. A tensor the
// file holds that this module does not know is a failure, so new goldens cannot pass unchecked.
import * as mi from '../engine/index.ts';
import type { Backend } from '../engine/index.ts';
import { loadPretrained } from './pretrained.ts';
import type { MambaLM } from './model.ts';
import { openSafetensors, type TensorRecord } from './safetensors.ts';

export interface ParityRow {
  name: string;
  /** max |ours - golden| (for token sequences: the number of differing tokens) */
  maxAbsError: number;
  tolerance: number;
  ok: boolean;
  note?: string;
}

export interface ParityOptions {
  backend?: Backend;
  /** tolerance relative to the golden tensor's largest magnitude (default 1e-5 on the CPU, 1e-4 on WebGPU) */
  relTol?: number;
  /** rows of the Jacobian per backward pass (default 256) */
  jacobianChunk?: number;
  /** only tensors whose name contains one of these (default: all) */
  only?: string[];
  /** load a checkpoint with NaN/Inf weights (LoadOptions.allowNonFinite), to see where they lead */
  allowNonFinite?: boolean;
}

/** Golden activation suffix -> hook name ({i} is the layer). */
const ACTIVATIONS: [RegExp, (i: string) => string][] = [
  [/^embed_out$/, () => 'hook_embed'],
  [/^layers\.(\d+)\.norm_out$/, (i) => `blocks.${i}.hook_norm`],
  [/^layers\.(\d+)\.in_proj_out$/, (i) => `blocks.${i}.mixer.hook_in_proj`],
  [/^layers\.(\d+)\.conv_out_preact$/, (i) => `blocks.${i}.mixer.hook_conv`],
  [/^layers\.(\d+)\.x_proj_out$/, (i) => `blocks.${i}.mixer.hook_x_proj`],
  [/^layers\.(\d+)\.dt_proj_out_presoftplus$/, (i) => `blocks.${i}.mixer.hook_dt`],
  [/^layers\.(\d+)\.gated_y$/, (i) => `blocks.${i}.mixer.hook_gated`],
  [/^layers\.(\d+)\.mixer_out$/, (i) => `blocks.${i}.hook_mixer_out`],
  [/^layers\.(\d+)\.resid_post$/, (i) => `blocks.${i}.hook_resid_post`],
  [/^norm_f_out$/, () => 'hook_norm_f'],
  [/^logits$/, () => 'hook_logits'],
];
const FINAL_STATE = /^layers\.(\d+)\.(ssm|conv)_state_final$/;
const INPUTS = new Set(['input_ids', 'target_token']);

function hookFor(suffix: string): string | null {
  for (const [re, f] of ACTIVATIONS) {
    const m = suffix.match(re);
    if (m) return f(m[1]);
  }
  return null;
}

function compare(name: string, ours: ArrayLike<number>, golden: ArrayLike<number>, relTol: number, note?: string): ParityRow {
  if (ours.length !== golden.length)
    return { name, maxAbsError: Infinity, tolerance: 0, ok: false, note: `size ${ours.length} vs golden ${golden.length}` };
  let err = 0,
    scale = 0;
  for (let i = 0; i < golden.length; i++) {
    const d = Math.abs(ours[i] - golden[i]);
    err = Number.isNaN(d) ? Infinity : Math.max(err, d);
    scale = Math.max(scale, Math.abs(golden[i]));
  }
  const tolerance = relTol * Math.max(scale, 1e-6);
  return { name, maxAbsError: err, tolerance, ok: err <= tolerance, note };
}

/** Runs every check of the golden file against the checkpoint in modelDir. */
export async function checkParity(modelDir: string, goldenPath: string, opts: ParityOptions = {}): Promise<ParityRow[]> {
  const backend = opts.backend ?? mi.getBackend();
  const onCpu = backend.name === 'cpu';
  const relTol = opts.relTol ?? (onCpu ? 1e-5 : 1e-4);
  const file = await openSafetensors(goldenPath);
  const golden = new Map<string, TensorRecord>();
  try {
    for (const n of file.names) {
      if (!opts.only || INPUTS.has(n) || opts.only.some((s) => n.includes(s))) golden.set(n, await file.read(n));
    }
  } finally {
    await file.close();
  }
  const ids = golden.get('input_ids');
  if (!ids) throw new Error(`parity ${goldenPath}: no input_ids`);
  if (!(ids.data instanceof Int32Array) || ids.shape.length !== 2 || ids.shape[0] < 1 || ids.shape[1] < 2) {
    throw new Error(
      `parity ${goldenPath}: tensor "input_ids" must be integer [batch, seq] with seq >= 2, found ${ids.dtype}[${ids.shape}]`,
    );
  }
  const [batch, T] = ids.shape;
  const idRows = Array.from({ length: batch }, (_, b) => Array.from(ids.data.subarray(b * T, (b + 1) * T)));
  const tok = golden.get('target_token');
  if (tok && (!(tok.data instanceof Int32Array) || tok.data.length !== 1)) {
    throw new Error(`parity ${goldenPath}: tensor "target_token" must hold one integer, found ${tok.dtype}[${tok.shape}]`);
  }

  const load = { backend, allowNonFinite: opts.allowNonFinite };
  const m32 = await loadPretrained(modelDir, { ...load, dtype: 'float32' });
  // float64 exists on the CPU only; elsewhere the f64 goldens are checked with the float32 model
  let m64 = m32;
  try {
    if (onCpu) m64 = await loadPretrained(modelDir, { ...load, dtype: 'float64' });
    const V = m32.config.vocab_size;
    const badId = ids.data.findIndex((t) => t < 0 || t >= V);
    if (badId >= 0)
      throw new Error(
        `parity ${goldenPath}: tensor "input_ids" holds ${ids.data[badId]} at flat index ${badId}, outside the vocabulary [0, ${V})`,
      );
    if (tok && (tok.data[0] < 0 || tok.data[0] >= V))
      throw new Error(`parity ${goldenPath}: tensor "target_token" holds ${tok.data[0]}, outside the vocabulary [0, ${V})`);
  } catch (e) {
    m32.dispose();
    if (m64 !== m32) m64.dispose();
    throw e;
  }
  const f64Note = onCpu ? undefined : 'float32 model';
  const rows: ParityRow[] = [];
  const byPrefix = { 'f32.': m32, 'f64.': m64 } as const;
  try {
    for (const [prefix, model] of Object.entries(byPrefix) as [keyof typeof byPrefix, MambaLM][]) {
      const note = prefix === 'f64.' ? f64Note : undefined;
      const mine = [...golden.keys()].filter((n) => n.startsWith(prefix));
      const acts = new Map<string, string>();
      const finals: string[] = [];
      for (const n of mine) {
        const suffix = n.slice(prefix.length);
        const hook = hookFor(suffix);
        if (hook) acts.set(n, hook);
        else if (FINAL_STATE.test(suffix)) finals.push(n);
      }
      if (acts.size) {
        await mi.tidyAsync(async () => {
          const { cache } = mi.noGrad(() => model.runWithCache(idRows, [...new Set(acts.values())]));
          for (const [n, hook] of acts) rows.push(compare(n, await cache.get(hook)!.data(), golden.get(n)!.data, relTol, note));
        });
      }
      if (finals.length) {
        const { logits, cache } = model.prefill(idRows);
        for (const n of finals) {
          const [, i, kind] = n.slice(prefix.length).match(FINAL_STATE)!;
          const st = cache.layers[Number(i)];
          rows.push(compare(n, await (kind === 'ssm' ? st.ssm : st.conv).data(), golden.get(n)!.data, relTol, note));
        }
        logits.dispose();
        for (const l of cache.layers) {
          l.conv.dispose();
          l.ssm.dispose();
        }
      }
      if (prefix === 'f64.') rows.push(...(await gradientChecks(model, golden, idRows, relTol, opts.jacobianChunk ?? 256, note)));
    }
    const greedy = golden.get('greedy_prompt5_new10');
    if (greedy) {
      const prompt = Array.from(greedy.data.subarray(0, 5));
      const gen = (await m64.generate(prompt, { maxNewTokens: greedy.data.length - 5 }))[0];
      const diff = gen.filter((t, i) => t !== greedy.data[i]).length + Math.abs(gen.length - greedy.data.length);
      rows.push({
        name: 'greedy_prompt5_new10',
        maxAbsError: diff,
        tolerance: 0,
        ok: diff === 0,
        note: diff ? `got ${gen.join(' ')}` : f64Note,
      });
    }
  } finally {
    m32.dispose();
    if (m64 !== m32) m64.dispose();
  }
  const known = new Set(rows.map((r) => r.name));
  for (const n of golden.keys()) {
    if (!known.has(n) && !INPUTS.has(n))
      rows.push({ name: n, maxAbsError: NaN, tolerance: 0, ok: false, note: 'unknown golden tensor: nothing here computes it' });
  }
  return rows;
}

/** f64.loss, f64.grad.*, f64.dlogit_last_dembeds and f64.jacobian_fro_out_t_in_s. */
async function gradientChecks(
  model: MambaLM,
  golden: Map<string, TensorRecord>,
  idRows: number[][],
  relTol: number,
  chunk: number,
  note?: string,
): Promise<ParityRow[]> {
  const rows: ParityRow[] = [];
  const T = idRows[0].length;
  const gradNames = [...golden.keys()].filter((n) => n.startsWith('f64.grad.'));
  if (golden.has('f64.loss') || gradNames.length) {
    await mi.tidyAsync(async () => {
      for (const t of model.params.values()) t.requiresGrad = true;
      try {
        const ids = model.ids(idRows);
        const logits = model.forward(ids);
        const loss = mi.crossEntropy(mi.slice(logits, 1, 0, T - 1), mi.slice(ids, 1, 1, T));
        // The fixture's f64.grad.* are not the loss gradient alone: generate.py keeps
        // p.grad.detach().contiguous(), which aliases p.grad, and its next backward (of
        // logits[0, T-1, target_token] from detached input embeddings) adds into it. So the golden
        // holds d(loss)/dθ + d(that logit)/dθ, with the embedding table getting only the tied
        // head's share of the second term. We differentiate the same sum; the loss gradient alone
        // is checked against finite differences in test/mamba/model.test.ts.
        const tok = golden.get('target_token');
        let objective = loss;
        if (tok) {
          const embeds = mi.noGrad(() => mi.embedding(model.p('backbone.embeddings.weight'), ids));
          const lg = model.runEmbeds(embeds).logits;
          const V = model.config.vocab_size;
          const t = tok.data[0];
          objective = mi.add(loss, mi.reshape(mi.slice(mi.reshape(mi.slice(mi.slice(lg, 0, 0, 1), 1, T - 1, T), [V]), 0, t, t + 1), []));
        }
        const grads = mi.backwardFrom(objective);
        const gradNote = tok ? `${note ? `${note}; ` : ''}loss + logit gradient, as the fixture accumulated` : note;
        if (golden.has('f64.loss')) rows.push(compare('f64.loss', await loss.data(), golden.get('f64.loss')!.data, relTol, note));
        for (const n of gradNames) {
          const p = model.params.get(n.slice('f64.grad.'.length));
          const g = p && grads.get(p);
          if (!g) {
            rows.push({ name: n, maxAbsError: NaN, tolerance: 0, ok: false, note: p ? 'no gradient reached it' : 'no such parameter' });
            continue;
          }
          rows.push(compare(n, await g.data(), golden.get(n)!.data, relTol, gradNote));
        }
      } finally {
        for (const t of model.params.values()) t.requiresGrad = false;
      }
    });
  }
  const dl = golden.get('f64.dlogit_last_dembeds');
  const tok = golden.get('target_token');
  if (dl && tok) {
    await mi.tidyAsync(async () => {
      const embeds = mi.noGrad(() => mi.embedding(model.p('backbone.embeddings.weight'), model.ids(idRows)));
      const [logits, pull] = mi.vjp((e) => model.runEmbeds(e).logits, embeds);
      const cot = new (model.dtype === 'float64' ? Float64Array : Float32Array)(logits.size);
      const V = model.config.vocab_size;
      cot[(T - 1) * V + tok.data[0]] = 1; // batch row 0, last position, the target token
      const g = pull(mi.tensor(cot, logits.shape, { dtype: model.dtype, backend: model.backend }))[0];
      rows.push(compare('f64.dlogit_last_dembeds', await g.data(), dl.data, relTol, note));
    });
  }
  const jac = golden.get('f64.jacobian_fro_out_t_in_s');
  if (jac) {
    await mi.tidyAsync(async () => {
      const d = model.config.hidden_size;
      const e0 = mi.noGrad(() => mi.embedding(model.p('backbone.embeddings.weight'), model.ids([idRows[0]])));
      const J = mi.jacobian((e) => model.hiddenFromEmbeds(e), e0, { batched: true, chunk });
      const fro = mi.sqrt(mi.sum(mi.square(mi.permute(mi.reshape(J, [T, d, T, d]), [0, 2, 1, 3])), [2, 3]));
      rows.push(compare('f64.jacobian_fro_out_t_in_s', await fro.data(), jac.data, relTol, note));
    });
  }
  return rows;
}

/** One line per row: name, max abs error, tolerance, ok. */
export function formatRows(rows: readonly ParityRow[]): string {
  const w = Math.max(...rows.map((r) => r.name.length), 4);
  const lines = [`${'name'.padEnd(w)}  ${'max_abs_err'.padStart(11)}  ${'tolerance'.padStart(9)}  ok`];
  for (const r of rows) {
    lines.push(
      `${r.name.padEnd(w)}  ${r.maxAbsError.toExponential(2).padStart(11)}  ${r.tolerance.toExponential(2).padStart(9)}  ${r.ok ? 'ok' : 'FAIL'}${r.note ? `  (${r.note})` : ''}`,
    );
  }
  return lines.join('\n');
}
