// Byte budgets of steps 5-11 (issue 17; steps 1-4 and the check itself: steps/budget.ts). Each entry
// follows the code that allocates, named there, and counts only the buffers named, so it is a lower
// bound: float32 models (a float64 model doubles the tensors), the shortest length a step may use,
// and, as studyShapes does, every task's model (whether it passes the gate is not known yet). Where
// a step works in chunks, so that a field sets its count of passes and not its memory, a comment
// says so instead of an entry.
import { ANSWER_SOURCE } from '../interp/patching.ts';
import { chunkSequences } from '../interp/attribution.ts';
import { RESIDUAL_SKETCH } from '../interp/temporal.ts';
import { LAST_RESIDUAL_TOKENS } from '../interp/transfer.ts';
import { taskModelConfig } from '../interp/train-task.ts';
import type { MambaConfig } from '../mamba/config.ts';
import type { Allocation, StudyShape } from './budget.ts';
import { trainSettings, type RunConfig } from './config.ts';
import { COPYING_TASK } from './copying.ts';

const F32 = 4,
  F64 = 8;
/** a JS number in a packed array (number[], number[][]) */
const NUM = 8;
/** rows of a batched Jacobian a backward pass takes (engine/autograd/functional.ts, chunk default) */
const JACOBIAN_CHUNK = 256;

function dims(cfg: MambaConfig) {
  return {
    D: cfg.hidden_size,
    E: cfg.intermediate_size,
    EN: cfg.intermediate_size * cfg.state_size,
    L: cfg.num_hidden_layers,
    V: cfg.vocab_size,
  };
}

/**
 * The largest allocations of steps 5-11 for one studied model. Steps 5, 6, 7 and 8 study only
 * models whose task copies its answer from a source position (steps/models.ts withAnswerSource);
 * steps 5, 7, 10 and 11 do not run on a --model checkpoint.
 */
export function analysisAllocations(c: RunConfig, s: StudyShape): Allocation[] {
  const { D, E, EN, L, V } = dims(s.config);
  const T = s.seqLen;
  const sourced = Boolean(ANSWER_SOURCE[s.task]);
  const toy = !c.model;
  const out: Allocation[] = [];
  const logits = (step: number, field: string, n: number, what: string): Allocation => ({
    step,
    fields: [field],
    what: `the logits of ${what} of ${s.label}`,
    bytes: n * T * V * F32,
    tensor: true,
  });
  if (sourced && toy) {
    // step 5 (steps/step05-circuits.ts attributionPatchingMaps, on the selection half of
    // 2 x patching.examples study sequences): cacheActivations keeps every layer's hook_resid_post
    // and hook_h [n, T, E, N] of the whole half, interp/attribution.ts attributionPatching reads each
    // out (cleanData, x2) and fills the metric's weights [n, T, V] up front. Its backward passes, and
    // gradTimesActivation's, run in chunks of ATTRIBUTION_TOKENS tokens: patching.examples sets
    // their number, not their memory
    const n = c.patching.examples;
    out.push({
      step: 5,
      fields: ['patching.examples'],
      what: `the clean activations and attribution-patching weights of ${s.label}'s ${n} selection sequences`,
      bytes: 2 * n * T * L * (D + EN) * F32 + n * T * V * F32,
    });
    out.push({
      step: 5,
      fields: ['patching.examples'],
      what: `a layer's hook_h of ${s.label}'s selection sequences`,
      bytes: n * T * EN * F32,
      tensor: true,
    });
    out.push(logits(5, 'patching.examples', n, 'the selection sequences'));
    // interp/controls.ts matchedChannels: circuit.controls channel lists per circuit (number[]),
    // at least one circuit on the last residual, whose size cannot exceed its width
    out.push({
      step: 5,
      fields: ['circuit.controls', 'circuit.size'],
      what: `the matched controls of a residual circuit of ${s.label}`,
      bytes: c.circuit.controls * Math.min(c.circuit.size, D) * NUM,
    });
  }
  if (sourced) {
    // step 6 (steps/step06-patching.ts, on the test half): the clean and corrupted outcome runs
    // make logits [n, T, V]; the state circuit's cacheActivations at hook_h and its rolledBatch copy
    // (resample ablation). interp/patching.ts outcomeMany patches one site a forward
    // (STACK_TOKENS 0), so patching.controls and tableControls set forwards, not memory
    const n = c.patching.examples;
    out.push(logits(6, 'patching.examples', n, 'the test sequences'));
    out.push({
      step: 6,
      fields: ['patching.examples'],
      what: `hook_h of ${s.label}'s ${n} test sequences and its resampled copy`,
      bytes: 2 * n * T * EN * F32,
    });
    out.push({
      step: 6,
      fields: ['patching.examples'],
      what: `hook_h of ${s.label}'s test sequences`,
      bytes: n * T * EN * F32,
      tensor: true,
    });
  }
  if (sourced && toy) {
    // step 7 (steps/step07-perturb.ts, interp/perturb.ts noiseCurve): the state circuit's cached
    // hook_h [n, T, E, N] and, per draw, noiseTensor's Float32Array and the tensor made of it
    const n = c.perturb.examples;
    out.push({
      step: 7,
      fields: ['perturb.examples'],
      what: `hook_h of ${s.label}'s ${n} sequences and a noise draw there`,
      bytes: 3 * n * T * EN * F32,
    });
    out.push({
      step: 7,
      fields: ['perturb.examples'],
      what: `a noise draw at hook_h of ${s.label}`,
      bytes: n * T * EN * F32,
      tensor: true,
    });
  }
  if (sourced) {
    // step 8 (steps/step08-temporal.ts), one sequence of temporal.seqLen at a time (a task may need
    // a longer one): interp/temporal.ts residualInfluence's Jacobian, (L + 1) x T x RESIDUAL_SKETCH
    // rows of T x D, concatenated from its blocks (x2); each backward pass runs on up to 256 copies
    // of the sequence (a layer's in_proj [256, T, 2E]); hiddenAttention's alpha [E, T, T] and its
    // Float64Array copy; and every map the step keeps: per task sequence L + 1 residual maps and
    // the exact answer rows, per random sequence one map, T x T numbers each
    const T8 = c.temporal.seqLen;
    const q = Math.min(RESIDUAL_SKETCH, D);
    const rows = (L + 1) * T8 * q;
    const jacobian = rows * T8 * D * F32;
    out.push({
      step: 8,
      fields: ['temporal.seqLen'],
      what: `the residual influence Jacobian of one sequence of ${s.label}`,
      bytes: 2 * jacobian,
    });
    out.push({
      step: 8,
      fields: ['temporal.seqLen'],
      what: `the residual influence Jacobian of one sequence of ${s.label}`,
      bytes: jacobian,
      tensor: true,
    });
    out.push({
      step: 8,
      fields: ['temporal.seqLen'],
      what: `a layer's in_proj output for ${Math.min(JACOBIAN_CHUNK, rows)} copies of one sequence of ${s.label} (a Jacobian backward)`,
      bytes: Math.min(JACOBIAN_CHUNK, rows) * T8 * 2 * E * F32,
      tensor: true,
    });
    out.push({
      step: 8,
      fields: ['temporal.seqLen'],
      what: `the hidden attention of one layer of ${s.label}`,
      bytes: E * T8 * T8 * (F32 + F64),
    });
    out.push({
      step: 8,
      fields: ['temporal.seqLen'],
      what: `the hidden attention of one layer of ${s.label}`,
      bytes: E * T8 * T8 * F32,
      tensor: true,
    });
    out.push({
      step: 8,
      fields: ['temporal.examples', 'temporal.seqLen'],
      what: `the influence maps of ${s.label}`,
      bytes: c.temporal.examples * (L + 3) * T8 * T8 * NUM,
    });
  }
  {
    // step 9 (steps/step09-dynamics.ts, interp/dynamics.ts stateTrajectories): hook_h of the last
    // layer [n, T, E, N] on dynamics.examples sequences, its Float64Array copy and interp/linalg.ts
    // pca's centred Float64Array X
    const n = c.dynamics.examples;
    out.push({
      step: 9,
      fields: ['dynamics.examples'],
      what: `the SSM states of ${s.label}'s ${n} sequences and their PCA`,
      bytes: n * T * EN * (F32 + 2 * F64),
    });
    out.push({
      step: 9,
      fields: ['dynamics.examples'],
      what: `hook_h of ${s.label}'s ${n} sequences`,
      bytes: n * T * EN * F32,
      tensor: true,
    });
  }
  const seeds = c.train.seeds;
  if (toy && seeds >= 2) {
    // step 10 (steps/step10-reproducibility.ts): on repro.sequences held-out sequences, every
    // seed's residual stream at every layer (Float32Array [n * T, D]) and a random-init model's,
    // held at once; the forward's logits; per seed, repro.controls located control channel sets
    const n = c.repro.sequences;
    out.push({
      step: 10,
      fields: ['repro.sequences'],
      what: `the residual streams of ${s.label}'s ${seeds} seeds and a random init on ${n} sequences`,
      bytes: (seeds + 1) * L * n * T * D * F32,
    });
    out.push(logits(10, 'repro.sequences', n, 'the held-out sequences'));
    if (sourced)
      out.push({
        step: 10,
        fields: ['repro.controls', 'circuit.size'],
        what: `the located controls of ${s.label}'s ${seeds} seeds`,
        bytes: seeds * c.repro.controls * Math.min(c.circuit.size, D) * NUM,
      });
  }
  return out;
}

/**
 * Step 11's largest allocations (steps/step11-transfer.ts; toy runs only). The mixture's components
 * are transfer.mixture, or every task with an answer source (all assumed to pass the gate); its
 * model has step 1's shape, its vocabulary the largest component's plus a task token each
 * (interp/tasks/mixture.ts), its length the longest component's. transfer.maxRows caps the probe
 * rows drawn from those sequences' cells, so it adds no memory beyond them.
 */
export function transferAllocations(c: RunConfig, shapes: readonly StudyShape[]): Allocation[] {
  if (c.model) return [];
  const t = c.train;
  const names = c.transfer.mixture.length ? c.transfer.mixture : c.tasks.filter((x) => ANSWER_SOURCE[x]);
  const opts = names
    .map((n) => (t.taskOptions as Record<string, Record<string, number> | undefined>)[n])
    .filter((o): o is Record<string, number> => Boolean(o))
    .map((o): Record<string, number> => ({ seqLen: t.seqLen, ...o }));
  const out: Allocation[] = [];
  if (opts.length >= 2) {
    const cfg = taskModelConfig(Math.max(...opts.map((o) => o.vocabSize)) + opts.length, trainSettings(t).model);
    const { D, E, L, V } = dims(cfg);
    const T = Math.max(...opts.map((o) => o.seqLen));
    // training the mixture model (interp/train-task.ts, in this thread): as step 1's batch, the
    // scan's x, delta and z in every layer and the logits
    out.push({
      step: 11,
      fields: ['train.batchSize'],
      what: `one training batch of the mixture model`,
      bytes: t.batchSize * T * (3 * E * L + V) * F32,
    });
    // per component a selection and a test half of transfer.examples sequences, each's last
    // residual kept (interp/transfer.ts lastResidual: Float32Array [n * T, D], made in forwards of
    // LAST_RESIDUAL_TOKENS tokens, whose logits transfer.examples does not grow past that)
    const n = c.transfer.examples;
    out.push({
      step: 11,
      fields: ['transfer.examples'],
      what: `the last residuals of the mixture model on ${opts.length} x 2 x ${n} sequences`,
      bytes: opts.length * 2 * n * T * D * F32,
    });
    // interp/transfer.ts lastResidualAttribution (step 5's circuit score, on a selection half):
    // the clean residual [n, T, D] as one tensor and attributionPatching's metric weights [n, T, V],
    // filled up front (its backward passes are chunked)
    out.push({
      step: 11,
      fields: ['transfer.examples'],
      what: `the attribution-patching weights of the mixture model on ${n} sequences`,
      bytes: n * T * V * F32,
    });
    out.push({
      step: 11,
      fields: ['transfer.examples'],
      what: `the clean last residual of the mixture model on ${n} sequences`,
      bytes: n * T * D * F32,
      tensor: true,
    });
    const per = Math.min(n, chunkSequences(T, LAST_RESIDUAL_TOKENS));
    out.push({
      step: 11,
      fields: ['transfer.examples'],
      what: `the logits of the mixture model on ${per} sequences`,
      bytes: per * T * V * F32,
      tensor: true,
    });
    // reuse claims rank among transfer.controls matched channel sets (interp/controls.ts matchedChannels)
    out.push({
      step: 11,
      fields: ['transfer.controls', 'circuit.size'],
      what: 'the matched controls of a circuit of the mixture model',
      bytes: c.transfer.controls * Math.min(c.circuit.size, D) * NUM,
    });
  }
  // across step 1's models (steps/transfer-across.ts), for a pair with the same inputs: both models'
  // last residuals on 4 batches of max(2, alignSequences / 4) sequences, and rows()'s number[] and
  // Float32Array of a side's two batches
  // (one seed a task, steps/step11-transfer.ts firstSeeds; a language model's copying test is left out)
  const sourced = shapes.filter((s) => ANSWER_SOURCE[s.task] && s.task !== COPYING_TASK);
  const pair = sourced.find((a, i) =>
    sourced.some((b, j) => j > i && b.config.vocab_size === a.config.vocab_size && b.seqLen === a.seqLen),
  );
  if (pair) {
    const half = Math.max(2, Math.floor(c.transfer.alignSequences / 4));
    const cells = half * pair.seqLen * pair.config.hidden_size;
    out.push({
      step: 11,
      fields: ['transfer.alignSequences'],
      what: `the aligned last residuals of two models of ${pair.label}'s inputs`,
      bytes: 2 * 4 * cells * F32 + 2 * cells * (NUM + F32),
    });
  }
  return out;
}
