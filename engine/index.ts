// The engine's public surface: tensors, ops, autograd, scopes and backends.
export * from './ops/index.ts';
export { Tensor, tensor, empty, full, zeros, ones, scalar, arange, toBackend, liveTensorCount, type CreateOptions } from './tensor.ts';
export { backward, backwardFrom, record } from './autograd/tape.ts';
export { grad, valueAndGrad, vjp, jacobian, detach, type JacobianOptions } from './autograd/functional.ts';
export { tidy, tidyAsync, keep, noGrad, isGradEnabled, getBackend, setBackend, initBackend, cpuBackend } from './runtime.ts';
export type { Backend, BackendName } from './backend.ts';
export type { DType, TypedArray } from './dtype.ts';
export { Rng, randn, rand, randint, type RandomOptions } from './random.ts';
export {
  SGD,
  AdamW,
  clipGradNorm,
  warmupCosine,
  type SGDOptions,
  type AdamWOptions,
  type AdamWState,
  type WarmupCosineOptions,
} from './optim.ts';
