// Sparse autoencoders: the model (sae.ts), training (train.ts) and the analyses (analysis.ts) as one
// namespace. Files on disk (io.ts, and SAELens's folder layout: saelens.ts) and the task-level
// evaluation (task.ts) are imported on their own: io.ts and saelens.ts read and write files, which
// the browser bundle leaves out.
export * from './sae.ts';
export { trainSae, untrainedSae, auxKLoss, type TrainSaeOptions, type SaeProgress } from './train.ts';
export * from './analysis.ts';
export * from './baselines.ts';
