// Which models a run studies: the toy models step 1 trained (models.json), or, with --model DIR,
// that one Hugging Face checkpoint, studied on the induction task generated with its vocabulary
// (the classic induction test for language models). Steps that apply to --model call this instead
// of reading step 1 themselves, so they work in both cases.
import { join } from 'node:path';
import { loadPretrained } from '../mamba/pretrained.ts';
import type { MambaLM } from '../mamba/model.ts';
import { loadTrainedModel, loadTrainedModels } from './artefacts.ts';
import { readJson } from './files.ts';
import type { StepContext } from './step.ts';

export interface StudyModel {
  task: string;
  seed: number;
  /** "<task>-s<seed>", or "pretrained" for --model */
  label: string;
  /** the options of the task generator (vocabSize, seqLen, ...) */
  taskOptions: Record<string, number>;
  /** loads the weights on the step's backend (the caller disposes the model) */
  load(): Promise<MambaLM>;
}

/** The models this run studies (see the header). */
export function studyModels(ctx: StepContext): StudyModel[] {
  const { config } = ctx;
  if (config.model) {
    const cfg = readJson<{ vocab_size: number }>(join(config.model, 'config.json'), `--model ${config.model}: config.json`);
    return [
      {
        task: 'induction',
        seed: 0,
        label: 'pretrained',
        taskOptions: { vocabSize: cfg.vocab_size, seqLen: config.train.seqLen },
        load: () => loadPretrained(config.model, { backend: ctx.backend }),
      },
    ];
  }
  ctx.input(1); // an error naming step 1 when its results are missing
  return loadTrainedModels(ctx.runDir).map((m) => ({
    task: m.task,
    seed: m.seed,
    label: `${m.task}-s${m.seed}`,
    taskOptions: m.taskOptions,
    load: () => loadTrainedModel(ctx.runDir, m, { backend: ctx.backend }),
  }));
}

/** Models (or collections, records) grouped by task, tasks in order of first appearance, each group by ascending seed. */
export function byTask<T extends { task: string; seed: number }>(items: readonly T[]): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const x of items) groups.set(x.task, [...(groups.get(x.task) ?? []), x]);
  for (const g of groups.values()) g.sort((a, b) => a.seed - b.seed);
  return groups;
}

/** The `n` lowest seeds of each task (all of them with --model, which has one), grouped as `byTask` orders them. */
export function firstSeeds<T extends { task: string; seed: number }>(items: readonly T[], n: number): T[] {
  return [...byTask(items).values()].flatMap((g) => g.slice(0, n));
}

/** The models steps 6 and 7 patch: the first `seeds` seeds of each task (all of them with --model). */
export function patchedModels(ctx: StepContext, seeds: number): StudyModel[] {
  return firstSeeds(studyModels(ctx), seeds);
}
