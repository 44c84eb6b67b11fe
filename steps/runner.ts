// Runs steps in order inside a run directory. Each step works in `step-NN-name.partial/` and is
// renamed to `step-NN-name/` when it finishes, with a `done.json` holding the hash of its config
// and of its inputs: a step whose hash is unchanged is not recomputed, and a run that stops
// resumes at the first unfinished step (a step may also resume its own partial work).
import { createHash } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Backend } from '../engine/backend.ts';
import { Rng } from '../engine/random.ts';
import { emptyReport } from '../interp/report/types.ts';
import type { RunConfig } from './config.ts';
import { readJson, writeAtomic, writeJsonAtomic } from './files.ts';
import { checkFiniteTensors } from './finite.ts';
import { Progress } from './progress.ts';
import type { Step, StepContext } from './step.ts';
import { stepDirName } from './table.ts';

export interface DoneRecord {
  step: number;
  name: string;
  hash: string;
  summary: string;
  seconds: number;
  finishedAt: string;
}

export class Runner {
  private readonly hashes = new Map<number, string>();
  private readonly logPath: string;

  constructor(
    readonly steps: readonly Step[],
    readonly config: RunConfig,
    readonly runDir: string,
    readonly backend: Backend,
    private readonly say: (line: string) => void = (l) => console.log(l),
    private readonly progress: Progress = new Progress(),
  ) {
    mkdirSync(runDir, { recursive: true });
    this.logPath = join(runDir, 'log.txt');
  }

  log(message: string): void {
    appendFileSync(this.logPath, `${new Date().toISOString()} ${message}\n`);
  }

  private byId(id: number): Step {
    const s = this.steps.find((x) => x.id === id);
    if (!s) throw new Error(`no step ${id}`);
    return s;
  }

  finalDir(id: number): string {
    return join(this.runDir, stepDirName(this.byId(id)));
  }

  private hashOf(step: Step): string {
    const h = createHash('sha256');
    const cfg = this.config as unknown as Record<string, unknown>;
    h.update(
      JSON.stringify({
        id: step.id,
        name: step.name,
        version: step.version,
        seed: this.config.seed,
        model: this.config.model,
        backend: this.backend.name,
        config: step.configKeys.map((k) => [k, cfg[k]]),
        inputs: this.needsOf(step).map((n) => this.hashes.get(n) ?? this.doneRecord(n)?.hash ?? 'missing'),
      }),
    );
    return h.digest('hex').slice(0, 16);
  }

  /**
   * The steps whose results `step` reads. With --model, steps that do not apply to a checkpoint
   * (e.g. step 1, training) are not run, so a step that applies reads the checkpoint instead.
   */
  private needsOf(step: Step): number[] {
    return needsOf(this.steps, this.config, step);
  }

  doneRecord(id: number): DoneRecord | null {
    const p = join(this.finalDir(id), 'done.json');
    return existsSync(p) ? readJson<DoneRecord>(p) : null;
  }

  /** Runs the given steps in order; returns their done records. */
  async run(ids: readonly number[]): Promise<DoneRecord[]> {
    const out: DoneRecord[] = [];
    for (const id of this.withMissingNeeds(ids)) {
      const step = this.byId(id);
      const hash = this.hashOf(step);
      const prev = this.doneRecord(id);
      if (prev && prev.hash === hash && !step.alwaysRun) {
        this.hashes.set(id, hash);
        this.say(`step ${String(id).padStart(2)} ${step.title}: cached (${prev.summary})`);
        out.push(prev);
        continue;
      }
      out.push(await this.runOne(step, hash));
    }
    return out;
  }

  /**
   * The steps asked for plus, first, any step they need whose results this run directory does not
   * hold yet (recursively), in step order.
   */
  withMissingNeeds(ids: readonly number[]): number[] {
    return withMissingNeeds(this.steps, this.config, this.runDir, ids, this.say);
  }

  private async runOne(step: Step, hash: string): Promise<DoneRecord> {
    const final = this.finalDir(step.id);
    const work = `${final}.partial`;
    mkdirSync(work, { recursive: true });
    const t0 = performance.now();
    this.log(`step ${step.id} ${step.name}: start (hash ${hash})`);
    const ctx: StepContext = {
      config: this.config,
      runDir: this.runDir,
      dir: work,
      backend: this.backend,
      rng: (name) => new Rng(`${this.config.seed}/step${step.id}/${name}`),
      log: (m) => this.log(`step ${step.id}: ${m}`),
      report: () => emptyReport(step.id, step.title),
      progress: (label, done, total) => this.progress.update(label, done, total),
      input: (id) => {
        const d = this.finalDir(id);
        if (!existsSync(join(d, 'done.json'))) throw new Error(`step ${step.id} needs step ${id}'s results in ${d}`);
        return d;
      },
      readJson: <T>(id: number, file: string) => readJson<T>(join(ctx.input(id), file)),
      writeJson: (file, value) => writeJsonAtomic(join(work, file), value),
      writeText: (file, text) => writeAtomic(join(work, file), text),
      writeBytes: (file, data) => writeAtomic(join(work, file), data),
      path: (file) => join(work, file),
    };
    let summary: string;
    try {
      summary = await step.run(ctx);
      // before the swap below: a tensor output holding NaN fails the step and keeps the old result
      await checkFiniteTensors(work);
    } catch (e) {
      this.log(`step ${step.id} ${step.name}: failed: ${(e as Error).stack ?? e}`);
      throw new Error(`step ${step.id} (${step.name}) failed: ${(e as Error).message}`);
    } finally {
      this.progress.end();
    }
    const seconds = (performance.now() - t0) / 1000;
    const record: DoneRecord = { step: step.id, name: step.name, hash, summary, seconds, finishedAt: new Date().toISOString() };
    writeJsonAtomic(join(work, 'done.json'), record);
    // swap the finished work into place; the previous result is removed only after that
    const old = `${final}.old`;
    rmSync(old, { recursive: true, force: true });
    if (existsSync(final)) renameSync(final, old);
    renameSync(work, final);
    rmSync(old, { recursive: true, force: true });
    this.hashes.set(step.id, hash);
    this.log(`step ${step.id} ${step.name}: done in ${seconds.toFixed(1)} s: ${summary}`);
    this.say(`step ${String(step.id).padStart(2)} ${step.title}: ${summary} (${seconds.toFixed(1)} s)`);
    return record;
  }
}

/** The steps whose results `step` reads; with --model, only those that apply to a checkpoint. */
function needsOf(steps: readonly Step[], config: RunConfig, step: Step): number[] {
  if (!config.model) return step.needs;
  return step.needs.filter((n) => steps.find((s) => s.id === n)?.appliesToModel);
}

/**
 * Runner.withMissingNeeds without a Runner (whose constructor makes the run directory), for checks
 * made before anything is written: `ids` plus every step they need, recursively, that `runDir`
 * has no finished result of. With --model, only the steps that apply to a checkpoint are needed.
 */
export function withMissingNeeds(
  steps: readonly Step[],
  config: RunConfig,
  runDir: string,
  ids: readonly number[],
  say: (line: string) => void = () => {},
): number[] {
  const byId = (id: number) => {
    const s = steps.find((x) => x.id === id);
    if (!s) throw new Error(`no step ${id}`);
    return s;
  };
  const want = new Set(ids);
  const visit = (id: number) => {
    for (const need of needsOf(steps, config, byId(id))) {
      if (want.has(need) || existsSync(join(runDir, stepDirName(byId(need)), 'done.json'))) continue;
      say(`step ${need} runs first: step ${id} needs its results`);
      want.add(need);
      visit(need);
    }
  };
  for (const id of ids) visit(id);
  return [...want].sort((a, b) => a - b);
}

/** A field whose smaller value (or a list missing entries) makes a step's outputs fewer. */
const SHRINKING: { field: string; get: (c: RunConfig) => number | string[] | string }[] = [
  { field: 'tasks', get: (c) => c.tasks },
  { field: 'model', get: (c) => c.model },
  { field: 'train.seeds', get: (c) => c.train.seeds },
  { field: 'collect.batches', get: (c) => c.collect.batches },
  { field: 'collect.batchSize', get: (c) => c.collect.batchSize },
  { field: 'collect.hooks', get: (c) => c.collect.hooks },
  { field: 'sae.kinds', get: (c) => c.sae.kinds },
  { field: 'sae.seeds', get: (c) => c.sae.seeds },
  { field: 'sae.hooks', get: (c) => c.sae.hooks },
  { field: 'probes.hooks', get: (c) => c.probes.hooks },
  { field: 'patching.seeds', get: (c) => c.patching.seeds },
  { field: 'temporal.seeds', get: (c) => c.temporal.seeds },
];

/**
 * Whether running `config` in `runDir` would replace a finished step with a smaller one: the run
 * directory's config.json has a finished step (done.json) whose config keys include a field that
 * `config` makes smaller (a number lower, a list missing an entry, a different --model). Returns
 * one line naming the step and the field, or null. Any step that reads the field would be re-run
 * with fewer outputs (fewer models, collections, SAEs), so the first such finished step is named.
 */
export function shrinkOf(runDir: string, config: RunConfig, steps: readonly Step[]): string | null {
  const prevPath = join(runDir, 'config.json');
  if (!existsSync(prevPath)) return null;
  const prev = readJson<RunConfig>(prevPath, `${prevPath}`);
  for (const s of SHRINKING) {
    const was = s.get(prev);
    const now = s.get(config);
    if (was === undefined) continue;
    const smaller =
      Array.isArray(was) && Array.isArray(now)
        ? was.filter((x) => !now.includes(x))
        : typeof was === 'number'
          ? (now as number) < was
          : was !== now;
    if (Array.isArray(smaller) ? !smaller.length : !smaller) continue;
    const top = s.field.split('.')[0];
    for (const step of steps) {
      if (!step.configKeys.includes(top as keyof RunConfig) && top !== 'model') continue;
      if (!existsSync(join(runDir, stepDirName(step), 'done.json'))) continue;
      const what = Array.isArray(smaller) ? `without ${smaller.join(', ')}` : `${JSON.stringify(was)} -> ${JSON.stringify(now)}`;
      return `${runDir}: step ${step.id} (${step.name}) is finished and ${s.field} would shrink (${what})`;
    }
  }
  return null;
}
