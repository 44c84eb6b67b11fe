// The task registry (the toy tasks, brown: language modelling on real text, and repeated-tokens: the copying test for a language model): look a task up by name, or import a generator directly.
import { brown, type BrownOptions } from './brown.ts';
import { induction, type InductionOptions } from './induction.ts';
import { mqar, type MqarOptions } from './mqar.ts';
import { repeatedTokens, type RepeatedTokensOptions } from './repeated-tokens.ts';
import { selectiveCopying, type SelectiveCopyingOptions } from './selective-copying.ts';
import type { Task } from './types.ts';

export * from './types.ts';
export { baselineAccuracy, type Baseline, type BaselineResult } from './baselines.ts';
export { induction, type InductionOptions } from './induction.ts';
export { selectiveCopying, type SelectiveCopyingOptions } from './selective-copying.ts';
export { mqar, type MqarOptions } from './mqar.ts';
export { mixtureTask, isPositionLabel, TASK_LABEL, type MixtureComponent, type MixtureTask } from './mixture.ts';
export { brown, type BrownOptions } from './brown.ts';
export { textWindowsTask, TEXT_TASK } from './text-windows.ts';
export { repeatedTokens, measureCopying, copyingScores, type RepeatedTokensOptions, type CopyingScores } from './repeated-tokens.ts';

export type AnyTaskOptions = InductionOptions & SelectiveCopyingOptions & MqarOptions & BrownOptions & RepeatedTokensOptions;

export const tasks = {
  [induction.name]: induction,
  [selectiveCopying.name]: selectiveCopying,
  [mqar.name]: mqar,
  [brown.name]: brown,
  [repeatedTokens.name]: repeatedTokens,
} as Record<string, Task<AnyTaskOptions>>;

export function getTask(name: string): Task<AnyTaskOptions> {
  const task = tasks[name];
  if (!task) throw new Error(`tasks: unknown task '${name}' (known: ${Object.keys(tasks).join(', ')})`);
  return task;
}

/**
 * Adds a task built at run time from data (the `--text` windows: steps/text-source.ts), or replaces
 * the one of that name built before; a built-in task's name is refused.
 */
export function registerTask(task: Task<AnyTaskOptions>): void {
  if (BUILT_IN.has(task.name)) throw new Error(`tasks: '${task.name}' is a built-in task`);
  tasks[task.name] = task;
}
const BUILT_IN = new Set(Object.keys(tasks));
