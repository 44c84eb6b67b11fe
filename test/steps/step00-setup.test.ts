// Step 0 (steps/step00-setup.ts) on the quick run: setup.json records the seed and the name of
// every step's random streams, the backend and the versions; the report shows them.
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { StepReport } from '../../interp/report/index.ts';
import { DEFAULT_CONFIG, mergeConfig, QUICK_OVERRIDES } from '../../steps/config.ts';
import { quickRun } from '../helpers/quick-run.ts';
import { readIn } from '../helpers/step-report.ts';

const quick = mergeConfig(DEFAULT_CONFIG, QUICK_OVERRIDES, 'quick');

test('step 0: the seed, one stream prefix per step, the backend and the versions', async () => {
  const dir = join(await quickRun(), 'step-00-setup');
  const setup = readIn<{
    seed: number;
    streams: Record<string, string>;
    backend: { name: string; description: string };
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
  assert.is(setup.versions.node, process.versions.node);
  assert.ok(setup.gitCommit.length > 0);
  const report = readIn<StepReport>(dir, 'report.json');
  assert.is(report.step, 0);
  assert.is(report.title, 'setup and seeding');
  const env = report.tables.find((t) => t.title === 'Environment')!;
  assert.ok(env.rows.some((r) => r[0] === 'seed' && r[1] === quick.seed));
});

test.run();
