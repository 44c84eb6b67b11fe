// Step 7 (steps/step07-perturb.ts) on the quick run: noise curves starting at 0, with ordered
// bands, at three granularities; claims and figures.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { StepReport } from '../../interp/report/index.ts';
import { QUICK_OVERRIDES } from '../../steps/config.ts';
import { quickRun } from '../helpers/quick-run.ts';
import { checkFigures, inOrder, readIn } from '../helpers/step-report.ts';

test('step 7: noise curves start at 0 for scale 0 and have ordered bands, at three granularities', async () => {
  const dir = join(await quickRun(), 'step-07-perturb');
  const points = readIn<
    {
      granularity: string;
      which: string;
      scale: number;
      accuracyDrop: number;
      kl: number;
      klCI: [number, number];
      accuracyDropCI: [number, number];
    }[]
  >(dir, 'curves.json');
  for (const g of ['channel', 'state', 'position'])
    for (const w of ['circuit', 'control']) {
      assert.ok(
        points.some((p) => p.granularity === g && p.which === w),
        `${g} ${w}`,
      );
    }
  for (const p of points) {
    if (p.scale === 0) {
      assert.is(p.kl, 0);
      assert.is(p.accuracyDrop, 0);
    }
    assert.ok(p.kl >= 0 && inOrder(p.klCI[0], p.kl, p.klCI[1]) && inOrder(p.accuracyDropCI[0], p.accuracyDrop, p.accuracyDropCI[1]));
  }
  const report = readIn<StepReport>(dir, 'report.json');
  assert.ok(report.claims.every((c) => c.p! > 0 && c.p! <= 1 && c.control));
  checkFigures(dir, report);
  assert.ok(existsSync(join(dir, 'tests.json')));
  // each claim ranks the circuit among its matched controls: the rank p-value, recomputed here
  const tests = readIn<{ granularity: string; c: { estimate: number; controls: number[]; p: number; pFloor: number } }[]>(
    dir,
    'tests.json',
  );
  assert.ok(tests.length > 0);
  for (const t of tests) {
    assert.is(t.c.controls.length, QUICK_OVERRIDES.perturb!.controls!, t.granularity);
    assert.is(t.c.p, (1 + t.c.controls.filter((v) => v >= t.c.estimate).length) / (1 + t.c.controls.length));
    assert.is(t.c.pFloor, 1 / (1 + t.c.controls.length));
  }
});

test.run();
