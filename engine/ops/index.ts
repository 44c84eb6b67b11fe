// Every op of the engine, and the wiring of the ones autograd itself needs.
import { setGradOps } from '../autograd/tape.ts';
import { add, onesLike } from './elementwise.ts';

export * from './elementwise.ts';
export * from './reduce.ts';
export * from './shape.ts';
export * from './matmul.ts';
export * from './indexing.ts';
export * from './softmax.ts';
export * from './rmsnorm.ts';
export * from './conv1d.ts';
export * from './topk.ts';
export * from './scan.ts';
export * from './sae.ts';
export * from './influence.ts';
export { eye } from './creation.ts';

setGradOps({ add, onesLike });
