// Which models a run studies: the toy models step 1 trained (models.json) that passed the learning
// gate, each on its task; every language model among them (a text task) ALSO on repeated random
// tokens, as its own study model "repeated-tokens-s<seed>" (task repeated-tokens, the same seed and
// checkpoint) when it passed its copying gate (steps/copying.ts); or, with --model DIR, that one
// Hugging Face checkpoint, studied on repeated-tokens over its vocabulary (the standard induction
// test for a pretrained language model; no step 1, so no gate), or with --text on windows of the
// user's text (steps/text-source.ts). Steps that apply to --model call this instead of reading
// step 1 themselves, so they work in both cases.
//
// The learning gate: a model is analysed only if its held-out accuracy at the training length
// reaches config.train.gate (a language model on text: if its held-out perplexity is below its n-gram
// baselines'). A circuit, probe or feature of a model that has not learned its task
// explains nothing about how the task is solved, so steps 2-11 never see such a model; their pages
// list it as not analysed, with its accuracy (gateNote, added to each report by saveReport).
import { ANSWER_SOURCE } from '../interp/patching.ts';
import { TEXT_TASK } from '../interp/tasks/index.ts';
import { loadPretrained } from '../mamba/pretrained.ts';
import type { MambaLM } from '../mamba/model.ts';
import { loadTrainedModel, loadTrainedModels, type TrainedModel } from './artefacts.ts';
import { COPYING_TASK, copyingExcludedLabel, copyingOptions } from './copying.ts';
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

/** Whether a model's held-out accuracy at the training length reaches the gate. */
export function passesGate(accuracy: number, gate: number): boolean {
  if (!(gate >= 0 && gate <= 1)) throw new Error(`train.gate must be in [0, 1], got ${gate}`);
  return Number.isFinite(accuracy) && accuracy >= gate;
}

type Gated = Pick<TrainedModel, 'accuracy' | 'perplexity' | 'perplexityBaselines'>;

/** The lowest (strongest) baseline perplexity of a language model, with its name. */
export function strongestPerplexity(m: Gated): { name: string; perplexity: number } | null {
  const bs = m.perplexityBaselines ?? [];
  return bs.length ? bs.reduce((a, b) => (b.perplexity < a.perplexity ? b : a)) : null;
}

/**
 * The learning gate of one model: for a language model (a perplexity recorded), held-out perplexity
 * below every n-gram baseline's on the same windows, since next-token accuracy on text stays low
 * however well a model learns; for the toy tasks, held-out accuracy >= gate.
 */
export function modelPassesGate(m: Gated, gate: number): boolean {
  if (m.perplexity === undefined) return passesGate(m.accuracy, gate);
  const best = strongestPerplexity(m);
  if (!best) throw new Error('learning gate: a language model without perplexity baselines');
  return Number.isFinite(m.perplexity) && m.perplexity < best.perplexity;
}

/** Splits models into those that pass the gate and those that do not, each in the order given. */
export function gateModels<T extends Gated>(models: readonly T[], gate: number): { passed: T[]; excluded: T[] } {
  const passed: T[] = [],
    excluded: T[] = [];
  for (const m of models) (modelPassesGate(m, gate) ? passed : excluded).push(m);
  return { passed, excluded };
}

/** "induction-s2 (accuracy 0.412 < gate 0.95)": how a page names a model it did not analyse. */
export function excludedLabel(m: Pick<TrainedModel, 'task' | 'seed' | 'accuracy' | 'gate' | 'perplexity' | 'perplexityBaselines'>): string {
  const best = m.perplexity === undefined ? null : strongestPerplexity(m);
  if (best)
    return `${m.task}-s${m.seed} (held-out perplexity ${m.perplexity!.toFixed(1)} not below the ${best.name}'s ${best.perplexity.toFixed(1)})`;
  return `${m.task}-s${m.seed} (accuracy ${m.accuracy.toFixed(3)} < gate ${m.gate})`;
}

/** Step 1's models that did not pass the gate (none with --model, or before step 1 has run). */
export function excludedModels(ctx: Pick<StepContext, 'config' | 'runDir'>): TrainedModel[] {
  if (ctx.config.model) return [];
  let models: TrainedModel[];
  try {
    models = loadTrainedModels(ctx.runDir);
  } catch {
    return [];
  }
  return models.filter((m) => !m.passed);
}

/** Step 1's language models that passed the learning gate but not the copying gate (not studied on repeated-tokens). */
export function copyingExcluded(ctx: Pick<StepContext, 'config' | 'runDir'>): TrainedModel[] {
  if (ctx.config.model) return [];
  try {
    return loadTrainedModels(ctx.runDir).filter((m) => m.passed && m.copying && !m.copying.passed);
  } catch {
    return [];
  }
}

/** The note each analysis page carries when a gate left models out, else null. */
export function gateNote(ctx: Pick<StepContext, 'config' | 'runDir'>): string | null {
  const out = excludedModels(ctx),
    noCopy = copyingExcluded(ctx);
  const notes: string[] = [];
  if (out.length)
    notes.push(
      `Not analysed (below the learning gate: held-out accuracy at the training length under train.gate, or a language model's perplexity not below its n-gram baselines'): ${out.map(excludedLabel).join(', ')}.`,
    );
  if (noCopy.length)
    notes.push(
      `Not analysed on ${COPYING_TASK} (below the copying gate: step 1's copying accuracy on repeated random tokens not above the fresh-half control by the paired test): ${noCopy.map((m) => copyingExcludedLabel(m.task, m.seed, m.copying!)).join(', ')}.`,
    );
  return notes.length ? notes.join(' ') : null;
}

/** The models this run studies (see the header). */
export function studyModels(ctx: StepContext): StudyModel[] {
  const { config } = ctx;
  if (config.model) {
    const c = config.copying;
    const copying = copyingOptions(config.model, c.seqLen, c.varyLength);
    // with --text, the run's own text in windows of train.seqLen (steps/text-source.ts registered
    // the task before the steps ran); else repeated random tokens
    const onText = config.text.files.length > 0;
    return [
      {
        task: onText ? TEXT_TASK : COPYING_TASK,
        seed: 0,
        label: 'pretrained',
        taskOptions: onText ? { vocabSize: copying.vocabSize, seqLen: config.train.seqLen } : { ...copying },
        load: () => loadPretrained(config.model, { backend: ctx.backend }),
      },
    ];
  }
  ctx.input(1); // an error naming step 1 when its results are missing
  const all = loadTrainedModels(ctx.runDir);
  const passed = all.filter((m) => m.passed);
  if (!passed.length) {
    throw new Error(
      `no model passed the learning gate (train.gate ${all[0]?.gate}): ${all.map(excludedLabel).join(', ')}; nothing to analyse (train longer, or lower train.gate)`,
    );
  }
  const own = passed.map((m) => ({
    task: m.task,
    seed: m.seed,
    label: `${m.task}-s${m.seed}`,
    taskOptions: m.taskOptions,
    load: () => loadTrainedModel(ctx.runDir, m, { backend: ctx.backend }),
  }));
  // the language models that copy, on repeated tokens: the same checkpoints under another task
  const copying = passed
    .filter((m) => m.copying?.passed)
    .map((m) => ({
      task: COPYING_TASK,
      seed: m.seed,
      label: `${COPYING_TASK}-s${m.seed}`,
      taskOptions: m.copying!.taskOptions,
      load: () => loadTrainedModel(ctx.runDir, m, { backend: ctx.backend }),
    }));
  const labels = copying.map((m) => m.label);
  if (new Set(labels).size < labels.length)
    throw new Error(`study models: two language-model tasks share a seed (${labels.join(', ')}); ${COPYING_TASK} labels would collide`);
  return [...own, ...copying];
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

/**
 * The models whose task copies its answer from a source position (interp/patching.ts ANSWER_SOURCE:
 * the corruption steps 6 and 7 patch against, the source step 8 traces influence back to), and the
 * labels of the others: a language model on text (brown) predicts every next token and has no such
 * source, so those steps do not apply to it and say so on their page.
 */
export function withAnswerSource<T extends { task: string; label: string }>(
  models: readonly T[],
): { applicable: T[]; notApplicable: string[] } {
  const applicable = models.filter((m) => ANSWER_SOURCE[m.task]);
  return { applicable, notApplicable: models.filter((m) => !ANSWER_SOURCE[m.task]).map((m) => m.label) };
}

/** The page note naming the models a step left out for having no answer source (null when none). */
export function noAnswerSourceNote(notApplicable: readonly string[], what: string): string | null {
  if (!notApplicable.length) return null;
  return `Not applicable to ${notApplicable.join(', ')}: ${what} needs answers copied from a source position (a clean/corrupted pair that swaps the copied token; interp/patching.ts ANSWER_SOURCE), and a language model on text predicts every next token with no such source.`;
}
