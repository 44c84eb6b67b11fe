// Training an SAE with the run's SAE settings (config.sae): step 3 trains its SAEs this way, and
// step 10 trains the SAEs of the seeds step 3 left out the same way, so every seed's SAE compares.
import { trainSae, type Sae, type SaeKind, type TrainSaeOptions } from '../interp/sae/index.ts';
import type { StepContext } from './step.ts';

/** An SAE of `kind` on activations [rows, dim], with config.sae's width, sparsity and optimiser settings. */
export function trainConfiguredSae(
  ctx: StepContext,
  acts: { data: Float32Array; dim: number },
  kind: SaeKind,
  seed: number,
  onProgress: TrainSaeOptions['onProgress'],
): Promise<Sae> {
  const cfg = ctx.config.sae;
  return trainSae(acts.data, {
    kind,
    d: acts.dim,
    latents: cfg.latentsMultiplier * acts.dim,
    k: cfg.k,
    l1: cfg.l1,
    steps: cfg.steps,
    batchSize: cfg.batchSize,
    lr: cfg.lr,
    seed,
    backend: ctx.backend,
    onProgress,
  });
}
