// What a step is, and what the runner gives it.
import type { Backend } from '../engine/backend.ts';
import type { Rng } from '../engine/random.ts';
import type { StepReport } from '../interp/report/index.ts';
import type { RunConfig } from './config.ts';
import type { StepInfo } from './table.ts';

export interface StepContext {
  readonly config: RunConfig;
  readonly runDir: string;
  /** this step's own folder (work in progress until the step finishes) */
  readonly dir: string;
  readonly backend: Backend;
  /** a random stream for `name`, determined by the run seed, the step and the name */
  rng(name: string): Rng;
  log(message: string): void;
  /** an empty report (report.json) for this step, with its id and title */
  report(): StepReport;
  /** a progress line for long work (progress.ts): `done` of `total` units, e.g. training steps */
  progress(label: string, done: number, total: number): void;
  /** the folder of a finished earlier step */
  input(stepId: number): string;
  readJson<T = unknown>(stepId: number, file: string): T;
  writeJson(file: string, value: unknown): void;
  writeText(file: string, text: string): void;
  writeBytes(file: string, data: Uint8Array): void;
  /** full path of a file in this step's folder */
  path(file: string): string;
}

/** A step: its id, name and title (from table.ts), and what it does. */
export interface Step extends StepInfo {
  /** bump when the step's code changes what it computes (part of its cache key) */
  version: number;
  /** earlier steps whose artefacts this one reads */
  needs: number[];
  /** the config sections this step's result depends on (part of its cache key) */
  configKeys: (keyof RunConfig)[];
  /** never taken from the cache (its inputs are the whole run directory) */
  alwaysRun?: boolean;
  /** runs on a Hugging Face checkpoint given with --model */
  appliesToModel: boolean;
  /** does the work; returns a one-line summary */
  run(ctx: StepContext): Promise<string>;
}
