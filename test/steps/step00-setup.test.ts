// Step 0 (steps/step00-setup.ts) on the quick run: setup.json records the seed and the name of
// every step's random streams, the backend and the versions; the report shows them. Step 0 alone
// with --backend auto and --backend webgpu records which backend was chosen, why, and the adapter.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { StepReport } from '../../interp/report/index.ts';
import { DEFAULT_CONFIG, mergeConfig, QUICK_OVERRIDES } from '../../steps/config.ts';
import { probeAdapter } from '../../engine/wgsl/device.ts';
import { quickRun } from '../helpers/quick-run.ts';
import { readIn } from '../helpers/step-report.ts';

interface Backend {
  name: string;
  description: string;
  requested: string;
  reason: string;
  adapter: { vendor: string; architecture: string; description: string; software: boolean; why: string } | null;
}

const quick = mergeConfig(DEFAULT_CONFIG, QUICK_OVERRIDES, 'quick');

test('step 0: the seed, one stream prefix per step, the backend and the versions', async () => {
  const dir = join(await quickRun(), 'step-00-setup');
  const setup = readIn<{
    seed: number;
    streams: Record<string, string>;
    backend: Backend;
    versions: Record<string, string>;
    gitCommit: string;
  }>(dir, 'setup.json');
  assert.is(setup.seed, quick.seed);
  assert.equal(
    Object.keys(setup.streams),
    Array.from({ length: 15 }, (_, i) => `step${i}`),
  );
  for (const [k, v] of Object.entries(setup.streams)) assert.is(v, `${quick.seed}/${k}/<name>`);
  assert.is(setup.backend.name, 'cpu');
  assert.is(setup.backend.requested, 'cpu');
  assert.is(setup.backend.reason, 'asked for the CPU backend');
  assert.is(setup.backend.adapter, null);
  assert.is(setup.versions.node, process.versions.node);
  assert.ok(setup.gitCommit.length > 0);
  const report = readIn<StepReport>(dir, 'report.json');
  assert.is(report.step, 0);
  assert.is(report.title, 'setup and seeding');
  const env = report.tables.find((t) => t.title === 'Environment')!;
  assert.ok(env.rows.some((r) => r[0] === 'seed' && r[1] === quick.seed));
  assert.ok(env.rows.some((r) => r[0] === 'backend chosen because' && r[1] === 'asked for the CPU backend'));
});

const ROOT = resolve(import.meta.dirname, '../..');
const tmp = mkdtempSync(join(tmpdir(), 'mi-step00-'));
process.once('exit', () => rmSync(tmp, { recursive: true, force: true }));

/** Step 0 alone on `backend`; its setup.json backend record, or null when the run failed. */
function stepZero(backend: string): { record: Backend | null; stderr: string } {
  const out = join(tmp, backend);
  const r = spawnSync(
    process.execPath,
    ['--import', 'tsx', join(ROOT, 'steps/run.ts'), '--step', '0', '--quick', '--backend', backend, '--out', out],
    {
      cwd: ROOT,
      encoding: 'utf8',
      env: { ...process.env, NODE_V8_COVERAGE: '', MI_BACKEND: '' },
    },
  );
  if (r.status !== 0) return { record: null, stderr: r.stderr };
  return { record: readIn<{ backend: Backend }>(join(out, 'step-00-setup'), 'setup.json').backend, stderr: r.stderr };
}

const here = await probeAdapter().catch(() => null);

test('step 0 with --backend auto: the choice, its reason and the adapter', () => {
  if (!here && process.env.REQUIRE_WEBGPU === '1') throw new Error('REQUIRE_WEBGPU=1 but no WebGPU adapter');
  const { record, stderr } = stepZero('auto');
  assert.ok(record, stderr);
  assert.is(record.requested, 'auto');
  if (!here || here.software) {
    assert.is(record.name, 'cpu');
    assert.match(record.reason, here ? /only a software WebGPU adapter/ : /no WebGPU/);
    assert.match(stderr, /using the CPU backend/);
  } else assert.is(record.name, 'webgpu');
  if (here) {
    assert.is(record.adapter?.vendor, here.vendor);
    assert.is(record.adapter?.architecture, here.architecture);
    assert.is(record.adapter?.description, here.description);
    assert.is(record.adapter?.software, here.software);
  } else assert.is(record.adapter, null);
});

test('step 0 with --backend webgpu: the adapter, software or not', () => {
  if (!here) return;
  const { record, stderr } = stepZero('webgpu');
  assert.ok(record, stderr);
  assert.is(record.name, 'webgpu');
  assert.is(record.requested, 'webgpu');
  assert.is(record.adapter?.software, here.software);
  assert.is(record.adapter?.description, here.description);
  if (here.software) assert.match(stderr, /webgpu: using a software adapter \(.+\): CPU speed, for tests/);
});

test.run();
