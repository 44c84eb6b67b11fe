// Step 0: setup. Records everything needed to reproduce the run: the full config, the seed of
// every random stream (all derived from the one run seed), versions, the git commit, and the
// backend with its adapter.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { saveReport } from './report-io.ts';
import type { Step } from './step.ts';
import { STEP_TABLE, stepInfo } from './table.ts';

function gitCommit(): string {
  try {
    const dirty = execFileSync('git', ['status', '--porcelain'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() !== '';
    const head = execFileSync('git', ['rev-parse', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    return dirty ? `${head} (with uncommitted changes)` : head;
  } catch {
    return 'unknown (not a git checkout)';
  }
}

function packageVersion(name: string): string {
  try {
    const p = resolve(import.meta.dirname, '..', 'node_modules', name, 'package.json');
    return (JSON.parse(readFileSync(p, 'utf8')) as { version: string }).version;
  } catch {
    return 'not installed';
  }
}

export const setupStep: Step = {
  ...stepInfo('setup'),
  version: 1,
  needs: [],
  configKeys: ['seed', 'tasks', 'train'],
  appliesToModel: true,
  async run(ctx) {
    const { config } = ctx;
    const streams = Object.fromEntries(Array.from({ length: STEP_TABLE.length }, (_, i) => [`step${i}`, `${config.seed}/step${i}/<name>`]));
    const setup = {
      seed: config.seed,
      seedDerivation: 'every random stream is seedrandom("<run seed>/step<N>/<stream name>"), so streams are independent and reproducible',
      streams,
      backend: { name: ctx.backend.name, description: ctx.backend.description },
      versions: {
        node: process.versions.node,
        platform: `${process.platform} ${process.arch}`,
        webgpu: packageVersion('webgpu'),
        seedrandom: packageVersion('seedrandom'),
        typescript: packageVersion('typescript'),
      },
      gitCommit: gitCommit(),
      startedAt: new Date().toISOString(),
    };
    ctx.writeJson('setup.json', setup);
    ctx.log(`backend ${ctx.backend.description}`);
    const report = ctx.report();
    report.summary = `Run seed ${config.seed}; every random stream derives from it. Backend: ${ctx.backend.description}.`;
    report.tables.push({
      title: 'Environment',
      columns: ['what', 'value'],
      rows: [
        ['seed', config.seed],
        ['backend', ctx.backend.description],
        ['git commit', setup.gitCommit],
        ...Object.entries(setup.versions).map(([k, v]) => [k, v] as [string, string]),
      ],
    });
    report.notes.push(setup.seedDerivation);
    saveReport(ctx, report);
    return `seed ${config.seed}, backend ${ctx.backend.description}`;
  },
};
