// Step 0: setup. Records everything needed to reproduce the run: the full config, the seed of
// every random stream (all derived from the one run seed), versions, the git commit, and the
// backend with its adapter.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Backend } from '../engine/backend.ts';
import { backendSelection } from '../engine/runtime.ts';
import type { AdapterSummary } from '../engine/wgsl/adapter.ts';
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

/**
 * The backend as setup.json records it: name and description, what was asked for, why this one,
 * and the WebGPU adapter looked at (vendor, architecture, description, software or hardware).
 */
export function backendRecord(backend: Backend): {
  name: string;
  description: string;
  requested: string;
  reason: string;
  adapter: AdapterSummary | null;
} {
  const sel = backendSelection();
  const own = (backend as { adapterInfo?: AdapterSummary }).adapterInfo ?? null;
  if (sel && sel.backend === backend) {
    return {
      name: backend.name,
      description: backend.description,
      requested: sel.requested,
      reason: sel.reason,
      adapter: sel.adapter ?? own,
    };
  }
  return {
    name: backend.name,
    description: backend.description,
    requested: backend.name,
    reason: 'given to the runner directly',
    adapter: own,
  };
}

function adapterCell(a: AdapterSummary | null): string {
  if (!a) return 'none looked at';
  const what = [a.vendor, a.architecture].filter(Boolean).join(' ') || 'unknown';
  return `${what}: ${a.description || a.device || '(no description)'} (${a.software ? 'software' : 'hardware'}: ${a.why})`;
}

export const setupStep: Step = {
  ...stepInfo('setup'),
  version: 2,
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
      backend: backendRecord(ctx.backend),
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
    ctx.log(`backend ${ctx.backend.description} (${setup.backend.reason})`);
    const report = ctx.report();
    report.summary = `Run seed ${config.seed}; every random stream derives from it. Backend: ${ctx.backend.description}.`;
    report.tables.push({
      title: 'Environment',
      columns: ['what', 'value'],
      rows: [
        ['seed', config.seed],
        ['backend', ctx.backend.description],
        ['backend asked for', setup.backend.requested],
        ['backend chosen because', setup.backend.reason],
        ['WebGPU adapter', adapterCell(setup.backend.adapter)],
        ['git commit', setup.gitCommit],
        ...Object.entries(setup.versions).map(([k, v]) => [k, v] as [string, string]),
      ],
    });
    report.notes.push(setup.seedDerivation);
    saveReport(ctx, report);
    return `seed ${config.seed}, backend ${ctx.backend.description}`;
  },
};
