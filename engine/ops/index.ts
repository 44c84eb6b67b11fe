// Every op of the engine, and the wiring of the ones autograd itself needs.
import { setGradOps } from '../autograd/tape.ts';
import { add, onesLike } from './elementwise.ts';

export * from './elementwise.ts';
export * from './reduce.ts';
export * from './shape.ts';
export * from './linalg.ts';
export * from './indexing.ts';
export * from './nn.ts';
export * from './scan.ts';
export { eye } from './creation.ts';

setGradOps({ add, onesLike });
