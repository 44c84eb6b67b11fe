// The browser entry point (bundled by scripts/build-browser.ts into dist/browser/mamba-interp.js):
// the same engine, model and interpretability methods as in Node, nothing rewritten for the page.
// Everything reachable from here must be free of static `node:` imports and of the `webgpu`
// package; Node-only paths (Dawn in engine/wgsl/device.ts, reading files in mamba/config.ts) load
// them with dynamic imports that only run in Node. test/browser/bundle.test.ts checks the bundle for both.
//
// Left out: mamba/pretrained.ts and mamba/train.ts (checkpoint folders on disk; use fetchPretrained),
// interp/report (vega, HTML reports in Node),
// interp/collect.ts, sae-io.ts, train-task.ts, worker-pool.ts (files and worker threads),
// interp/scaling.ts (a planning benchmark).

// engine: tensors, ops, autograd, optimisers, backends
export * from './engine/index.ts';
export { createWebGpuBackend, WebGpuBackend } from './engine/wgsl/backend.ts';
// another CPU backend on the same heap, e.g. the scalar TypeScript kernels alone: new CpuBackend({ wasm: false })
export { CpuBackend, type CpuBackendOptions } from './engine/cpu/backend.ts';
// a second, independent device: new WebGpuBackend(await acquireDevice())
export { acquireDevice, type AcquiredDevice } from './engine/wgsl/device.ts';
export type { KernelName, KernelParams } from './engine/kernels.ts';

// model
export { MambaLM, initMamba, type IdsLike, type RunOptions, type RunResult, type InitOptions } from './mamba/model.ts';
export { parseConfig, makeConfig, configToJSON, expectedParameterShapes, validateCheckpoint, type MambaConfig } from './mamba/config.ts';
export { hookNames, MIXER_HOOKS, type Hook, type HookFn, type HookContext } from './mamba/hooks.ts';
export { step, prefill, generate, newCache, disposeCache, type RecurrentCache, type GenerateOptions } from './mamba/recurrent.ts';
export { fetchPretrained, modelFromTensors, type FetchOptions, type LoadOptions } from './mamba/fetch-checkpoint.ts';
export { SafetensorsBuffer, type TensorSource, type TensorRecord } from './mamba/safetensors-format.ts';
// text: a tokenizer.json (fetchPretrained's tokenizer option attaches one), tokens as strings
export { Tokenizer, type DecodeOptions } from './mamba/tokenizer.ts';
export * as text from './mamba/text.ts';

// interpretability methods (namespaced: stats.mean is not the engine's mean)
export * as probes from './interp/probes.ts';
export * as stats from './interp/stats.ts';
export * as sae from './interp/sae/index.ts';
export * as tasks from './interp/tasks/index.ts';
export * as taskVariables from './interp/task-variables.ts';
export * as sites from './interp/sites.ts';
export * as patching from './interp/patching.ts';
export * as perturb from './interp/perturb.ts';
export * as attribution from './interp/attribution.ts';
export * as temporal from './interp/temporal.ts';
export * as dynamics from './interp/dynamics.ts';
export * as linalg from './interp/linalg.ts';
export * as probeEval from './interp/probe-eval.ts';
export * as saeTask from './interp/sae/task.ts';
