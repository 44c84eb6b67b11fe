// Byte budgets for the allocations a config controls (issue 17). `collect.batchSize` 100000000 once
// grew step 2 to 22 GiB before the kernel killed it; checkConfigRanges caps each field alone, but
// the bytes are products of fields (batches x batchSize x length x hook width). So before anything
// is written, steps/run.ts estimates, from the merged config and the studied models' shapes, the
// largest buffers steps 1-4 (here) and 5-11 (steps/budget-analysis.ts) would allocate, and refuses a config where one exceeds the budget (half
// of os.totalmem(); for one tensor also the backend's limit: the CPU's 4 GiB WebAssembly heap, a
// WebGPU device's maxStorageBufferBindingSize) with one line naming the fields and the bytes. Each
// estimate follows the code that allocates (named at each entry) and counts only the buffers named
// there, so it is a lower bound of the step's peak.
import { totalmem } from 'node:os';
import { join } from 'node:path';
import type { Backend } from '../engine/backend.ts';
import { PAGE_BYTES, WASM32_MAX_PAGES } from '../engine/wasm/memory.ts';
import { expandHookPatterns } from '../interp/collect.ts';
import { configFor, parameterCount } from '../interp/scaling.ts';
import { hookDimOf } from '../interp/sites.ts';
import { getTask, TEXT_TASK, type AnyTaskOptions } from '../interp/tasks/index.ts';
import { evalSequencesAt, taskModelConfig } from '../interp/train-task.ts';
import { parseConfig, type MambaConfig } from '../mamba/config.ts';
import { trainSettings, type RunConfig } from './config.ts';
import { analysisAllocations, transferAllocations } from './budget-analysis.ts';
import { COPYING_TASK } from './copying.ts';
import { readJson } from './files.ts';

const F32 = 4;

/** A model steps 2-11 study, as far as sizes go: its task (steps/models.ts), config and the length of its sequences. */
export interface StudyShape {
  label: string;
  task: string;
  config: MambaConfig;
  seqLen: number;
}

/**
 * The shapes of the models a run would study (steps/models.ts studyModels): every task's model at
 * its taskOptions (seqLen defaulting to train.seqLen, as step 1 does), a language model also on
 * repeated tokens at copying.seqLen; with --model the checkpoint at copying.seqLen (train.seqLen
 * with --text). Every task is counted, as whether a model passes the gate is not known yet.
 */
export function studyShapes(c: RunConfig): StudyShape[] {
  if (c.model) {
    const config = parseConfig(readJson(join(c.model, 'config.json')), c.model);
    const onText = c.text.files.length > 0;
    return [
      {
        label: 'the --model checkpoint',
        task: onText ? TEXT_TASK : COPYING_TASK,
        config,
        seqLen: onText ? c.train.seqLen : c.copying.seqLen,
      },
    ];
  }
  const shape = trainSettings(c.train).model;
  const out: StudyShape[] = [];
  for (const task of c.tasks) {
    const extra = (c.train.taskOptions as Record<string, Record<string, number> | undefined>)[task];
    if (!extra) continue; // step 1 names the missing entry
    const opts: Record<string, number> = { seqLen: c.train.seqLen, ...extra };
    const config = taskModelConfig(opts.vocabSize, shape);
    out.push({ label: task, task, config, seqLen: opts.seqLen });
    if (getTask(task).perplexityBaselines)
      out.push({ label: `${task} on repeated tokens`, task: COPYING_TASK, config, seqLen: c.copying.seqLen });
  }
  return out;
}

/** One collected hook of one model: rows (batch, position pairs), width, and the bytes of its shards' data. */
export interface HookRows {
  hook: string;
  rows: number;
  dim: number;
  bytes: number;
}

/**
 * The hooks step 2 collects for `s` and their rows, as steps/step02-collect.ts and
 * interp/collect.ts do: collect.hooks expanded over the layers, plus the last layer's hook_h when
 * collect.states, which only the first collect.stateBatches batches give rows to. `bytes` is what
 * its shards hold (float32 rows x dim) and what loadActivations (steps/artefacts.ts) allocates.
 */
export function collectedHooks(c: RunConfig, s: StudyShape): HookRows[] {
  const layers = s.config.num_hidden_layers;
  const stateHook = `blocks.${layers - 1}.mixer.hook_h`;
  const hooks = expandHookPatterns(c.collect.hooks, layers);
  if (c.collect.states && !hooks.includes(stateHook)) hooks.push(stateHook);
  const perBatch = c.collect.batchSize * s.seqLen;
  return hooks.map((hook) => {
    const batches = hook === stateHook ? Math.min(c.collect.stateBatches, c.collect.batches) : c.collect.batches;
    const dim = hookDimOf(s.config, hook);
    const rows = batches * perBatch;
    return { hook, rows, dim, bytes: rows * dim * F32 };
  });
}

/** An allocation a step would make: the config fields that size it, and its bytes. */
export interface Allocation {
  step: number;
  fields: string[];
  what: string;
  bytes: number;
  /** one tensor on the backend (checked against its per-tensor limit too: CPU heap, WebGPU binding) */
  tensor?: boolean;
}

/** The largest allocations of steps 2-4 for one studied model (step 1's: trainAllocations). */
export function allocationsOf(c: RunConfig, s: StudyShape): Allocation[] {
  const hooks = collectedHooks(c, s);
  const B = c.collect.batchSize,
    T = s.seqLen;
  const batchHooks = hooks.filter((h) => h.rows > 0);
  const out: Allocation[] = [];
  // interp/collect.ts collectActivations: one batch's cache holds every collected hook as a tensor,
  // and each is copied out with Float32Array.from (x2); the logits come with the forward pass
  const oneBatch = batchHooks.reduce((a, h) => a + 2 * B * T * h.dim * F32, 0) + B * T * s.config.vocab_size * F32;
  out.push({ step: 2, fields: ['collect.batchSize'], what: `the hooks of one batch of ${s.label}`, bytes: oneBatch });
  for (const h of batchHooks)
    out.push({
      step: 2,
      fields: ['collect.batchSize'],
      what: `${h.hook} of one batch of ${s.label}`,
      bytes: B * T * h.dim * F32,
      tensor: true,
    });
  out.push({
    step: 2,
    fields: ['collect.batchSize'],
    what: `the logits of one batch of ${s.label}`,
    bytes: B * T * s.config.vocab_size * F32,
    tensor: true,
  });
  // ShardWriter allocates shardRows x dim float32 per hook up front, all hooks at once
  out.push({
    step: 2,
    fields: ['collect.shardTokens'],
    what: `the shard buffers of ${s.label}'s ${hooks.length} hooks`,
    bytes: hooks.reduce((a, h) => a + c.collect.shardTokens * h.dim * F32, 0),
  });
  // step02-collect.ts generates every batch first (inputs and targets, int32) and concatenates them (x2)
  out.push({
    step: 2,
    fields: ['collect.batches', 'collect.batchSize'],
    what: `the token ids and targets of ${s.label}`,
    bytes: 2 * 2 * c.collect.batches * B * T * 4,
  });
  // steps 3 and 4 load a hook's rows whole (loadActivations); step 3's claim hooks also encode every
  // row into sae.latentsMultiplier x dim latents (interp/sae/analysis.ts encodeAll: the batches' parts and z, x2)
  const layers = s.config.num_hidden_layers;
  const claimHooks = expandHookPatterns(c.sae.hooks, layers);
  const saeHooks = [...new Set([...claimHooks, ...expandHookPatterns(c.sae.sweepHooks, layers)])];
  for (const name of saeHooks) {
    const h = hooks.find((x) => x.hook === name);
    if (!h) continue; // a hook not collected is step 3's own error
    const latents = claimHooks.includes(name) ? 2 * h.rows * c.sae.latentsMultiplier * h.dim * F32 : 0;
    out.push({
      step: 3,
      fields: ['collect.batches', 'collect.batchSize', ...(latents ? ['sae.latentsMultiplier'] : [])],
      what: `${name} of ${s.label}${latents ? ' and its SAE latents' : ''}`,
      bytes: h.bytes + latents,
    });
  }
  for (const name of expandHookPatterns(c.probes.hooks, layers)) {
    const h = hooks.find((x) => x.hook === name);
    if (h) out.push({ step: 4, fields: ['collect.batches', 'collect.batchSize'], what: `${name} of ${s.label}`, bytes: h.bytes });
  }
  return out;
}

/**
 * Step 1's largest allocations for one task's model, lower bounds: a training batch keeps, for the
 * backward pass, the scan's inputs x, delta and z ([batch, T, E] each, engine/ops/scan.ts) in every
 * layer and the logits [batch, T, vocab] (the cross-entropy's input), in each of train.workers
 * threads at once; the length-generalisation checks (interp/train-task.ts jobEvalBatches) run
 * batches of up to train.batchSize sequences (evalSequencesAt) at each longer length, without
 * gradients, whose largest tensor is a layer's in_proj output [batch, L, 2E] (scoredAccuracyOf
 * applies the head at the scored positions only, not as logits [batch, L, vocab]); and each
 * language model's copying test.
 */
export function trainAllocations(c: RunConfig, shapes: readonly StudyShape[] = studyShapes(c)): Allocation[] {
  const t = c.train;
  const out: Allocation[] = [];
  const shape = trainSettings(t).model;
  for (const task of c.tasks) {
    const extra = (t.taskOptions as Record<string, Record<string, number> | undefined>)[task];
    if (!extra) continue;
    const opts: Record<string, number> = { seqLen: t.seqLen, ...extra };
    const stages = (t.curriculum as Record<string, Record<string, number>[] | undefined>)[task] ?? [];
    const T = Math.max(opts.seqLen, ...stages.map((s) => s.seqLen ?? 0));
    const cfg = taskModelConfig(opts.vocabSize, shape);
    const E = cfg.intermediate_size,
      V = cfg.vocab_size;
    const perModel = t.batchSize * T * (3 * E * cfg.num_hidden_layers + V) * F32;
    const workers = Math.min(t.workers, t.seeds * c.tasks.length);
    out.push({
      step: 1,
      fields: ['train.batchSize', 'train.workers'],
      what: `one training batch of ${task} in each of ${workers} worker(s)`,
      bytes: workers * perModel,
    });
    out.push({
      step: 1,
      fields: ['train.batchSize'],
      what: `the logits of one training batch of ${task}`,
      bytes: t.batchSize * T * V * F32,
      tensor: true,
    });
    // as many held-out tokens at a longer length as at the training one, at least 8 sequences
    for (const L of t.lengthGeneralisation.filter((x) => x > opts.seqLen)) {
      const rows = Math.min(
        t.batchSize,
        evalSequencesAt({ evalBatches: t.evalBatches, batchSize: t.batchSize, taskOptions: opts as unknown as AnyTaskOptions }, L),
      );
      out.push({
        step: 1,
        fields: ['train.lengthGeneralisation'],
        what: `a layer's in_proj output for one held-out batch of ${task} (${rows} sequences) at length ${L}`,
        bytes: rows * L * 2 * E * F32,
        tensor: true,
      });
    }
  }
  // a language model's copying test (steps/copying.ts modelPredictions): the logits of all
  // copying.sequences repeated-token sequences in one forward
  for (const s of shapes.filter((x) => x.task === COPYING_TASK))
    out.push({
      step: 1,
      fields: ['copying.sequences', 'copying.seqLen'],
      what: `the logits of the copying test of ${s.label}`,
      bytes: c.copying.sequences * s.seqLen * s.config.vocab_size * F32,
      tensor: true,
    });
  return out;
}

/**
 * Step 14's largest allocation: the training step interp/scaling.ts measure times at each shape of
 * the grid (steps/step14-scaleup.ts scaleGrid: every scale.hidden at the base layers and length,
 * every scale.layers and scale.seqLens at the base hidden; vocabulary 64), which keeps the scan's
 * inputs x, delta and z [batch, T, E] per layer for the backward, the logits [batch, T, 64], and
 * the parameters with their gradients. Not in a --model run (step 14 does not apply).
 */
export function scaleAllocations(c: RunConfig): Allocation[] {
  if (c.model) return [];
  const s = c.scale;
  const VOCAB = 64;
  const grid = [
    ...s.hidden.map((hidden) => ({ hidden, layers: s.layers[0], T: s.seqLens[0], axis: 'scale.hidden' })),
    ...s.layers.map((layers) => ({ hidden: s.hidden[0], layers, T: s.seqLens[0], axis: 'scale.layers' })),
    ...s.seqLens.map((T) => ({ hidden: s.hidden[0], layers: s.layers[0], T, axis: 'scale.seqLens' })),
  ];
  return grid.map((g) => {
    const config = configFor({ hidden: g.hidden, layers: g.layers, stateSize: c.train.stateSize, vocab: VOCAB, expand: c.train.expand });
    const E = config.intermediate_size;
    const acts = s.batch * g.T * (3 * E * g.layers + VOCAB);
    return {
      step: 14,
      fields: [g.axis, 'scale.batch'],
      what: `the timed training step at hidden ${g.hidden}, ${g.layers} layers, length ${g.T}`,
      bytes: (acts + 2 * parameterCount(config)) * F32,
    };
  });
}

/** Bytes in decimal units, three significant digits: "1.23 GB". */
export function formatBytes(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB'];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i++;
  }
  return `${i ? n.toPrecision(3) : n} ${units[i]}`;
}

export interface Budget {
  /** the most bytes the step's named buffers may take in memory */
  bytes: number;
  what: string;
  /** the most bytes one tensor may take on the backend (a WebGPU device's limit), when known */
  tensorBytes?: number;
  tensorWhat?: string;
}

/**
 * Half of the machine's memory and, per tensor, the backend's limit: on the CPU the one WebAssembly
 * heap every CPU tensor lives in (wasm32: 4 GiB), on WebGPU the device's maxStorageBufferBindingSize.
 */
export function defaultBudget(backend?: Backend): Budget {
  const b: Budget = { bytes: Math.floor(totalmem() / 2), what: 'half of RAM' };
  if (backend?.name === 'cpu') {
    b.tensorBytes = WASM32_MAX_PAGES * PAGE_BYTES;
    b.tensorWhat = "the CPU backend's WebAssembly heap";
  }
  const limits =
    backend?.name === 'webgpu'
      ? (backend as unknown as { device?: { limits?: { maxStorageBufferBindingSize?: number } } }).device?.limits
      : undefined;
  if (limits?.maxStorageBufferBindingSize) {
    b.tensorBytes = limits.maxStorageBufferBindingSize;
    b.tensorWhat = "the WebGPU device's maxStorageBufferBindingSize";
  }
  return b;
}

/**
 * Throws when an allocation of `steps` (default: every step) exceeds `budget`, naming the largest such one: one line with the fields
 * and their values, the step and the bytes, e.g. "collect.batchSize 65536: step 2 would hold at least
 * 81.9 GB for the hooks of one batch of induction (budget 12.6 GB, half of RAM)".
 */
export function checkBudget(c: RunConfig, shapes: readonly StudyShape[], budget: Budget, steps?: readonly number[]): void {
  let worst: { a: Allocation; limit: number; what: string } | null = null;
  // step 1 trains only the toy models (a --model run skips it)
  const all = [
    ...(c.model ? [] : trainAllocations(c, shapes)),
    ...shapes.flatMap((s) => [...allocationsOf(c, s), ...analysisAllocations(c, s)]),
    ...transferAllocations(c, shapes),
    ...scaleAllocations(c),
  ];
  for (const a of all) {
    if (steps && !steps.includes(a.step)) continue;
    const over =
      a.bytes > budget.bytes
        ? { limit: budget.bytes, what: budget.what }
        : a.tensor && budget.tensorBytes !== undefined && a.bytes > budget.tensorBytes
          ? { limit: budget.tensorBytes, what: budget.tensorWhat ?? "the backend's limit" }
          : null;
    if (over && (!worst || a.bytes > worst.a.bytes)) worst = { a, ...over };
  }
  if (!worst) return;
  const cfg = c as unknown as Record<string, Record<string, unknown>>;
  const fields = worst.a.fields.map((f) => `${f} ${JSON.stringify(cfg[f.split('.')[0]][f.split('.')[1]])}`).join(' x ');
  throw new Error(
    `${fields}: step ${worst.a.step} would hold at least ${formatBytes(worst.a.bytes)} for ${worst.a.what} (budget ${formatBytes(worst.limit)}, ${worst.what})`,
  );
}
