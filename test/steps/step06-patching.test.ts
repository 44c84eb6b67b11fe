// Step 6 (steps/step06-patching.ts) on the quick run: patching effects with ordered intervals and
// p-values, next to their controls; claims and figures.
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { ControlTest } from '../../interp/controls.ts';
import { QUICK_OVERRIDES } from '../../steps/config.ts';
import type { StepReport } from '../../interp/report/index.ts';
import { quickRun } from '../helpers/quick-run.ts';
import { checkFigures, inOrder, readIn } from '../helpers/step-report.ts';

test('step 6: effects with ordered intervals, p in [0, 1], controls present, claims with test/interval/control', async () => {
  const dir = join(await quickRun(), 'step-06-patching');
  const rows = readIn<
    {
      circuit: string;
      task: string;
      kind: string;
      source: string;
      effect: string;
      controls: number;
      comparison: ControlTest;
    }[]
  >(dir, 'effects.json');
  assert.ok(rows.length > 0);
  for (const effect of ['zero ablation', 'mean ablation', 'resample ablation', 'clean patch'])
    assert.ok(
      rows.some((r) => r.effect === effect),
      effect,
    );
  assert.ok(
    rows.some((r) => r.circuit.includes('state') && r.effect === 'clean patch'),
    'the SSM state is patched',
  );
  for (const r of rows) {
    const c = r.comparison;
    assert.ok(r.controls > 0);
    assert.ok(inOrder(c.interval[0], c.estimate, c.interval[1]), `${r.circuit} ${r.effect}: estimate in its interval`);
    assert.ok(inOrder(c.controlInterval[0], c.control, c.controlInterval[1]));
    assert.ok(inOrder(c.differenceInterval[0], c.difference, c.differenceInterval[1]));
    // the rank p-value, recomputed from the control distribution the step wrote
    const want = ['zero ablation', 'resample ablation'].includes(r.effect)
      ? QUICK_OVERRIDES.patching!.tableControls!
      : QUICK_OVERRIDES.patching!.controls!;
    assert.is(c.controls.length, want, `${r.circuit} ${r.effect}: every matched control measured`);
    assert.is(r.controls, want);
    assert.is(c.p, (1 + c.controls.filter((v) => v >= c.estimate).length) / (1 + c.controls.length), `${r.circuit} ${r.effect}: rank p`);
    assert.is(c.pFloor, 1 / (1 + c.controls.length));
  }
  // a resample ablation that never resamples (rolledBatch shift ignored) measures 0 for every set (up
  // to 1e-8 where a state hook splits the scan); resampling from another sequence moves the loss
  const resample = rows.filter((r) => r.effect === 'resample ablation');
  const moved = (v: number) => Math.abs(v) > 1e-4;
  assert.ok(
    resample.some((r) => moved(r.comparison.estimate) && r.comparison.controls.some(moved)),
    `resample ablation changes the loss: ${resample.map((r) => r.comparison.estimate).join(', ')}`,
  );
  const report = readIn<StepReport>(dir, 'report.json');
  assert.ok(report.claims.length > 0);
  for (const c of report.claims) {
    assert.ok(c.test && c.control && c.interval[0] <= c.interval[1] && c.controlEstimate !== undefined && c.p !== undefined);
    // raw rank p, its floor and the effect condition, for the run-wide correction (step 13)
    assert.ok(c.pFloor! > 0 && c.p! >= c.pFloor! && c.condition && typeof c.effect === 'boolean', c.statement);
  }
  // the key claim is the one the config names, first, whatever the results
  const kc = { task: 'induction', hook: 'resid', source: 'attribution', effect: 'clean patch' };
  const key = rows.find((r) => r.task === kc.task && r.kind === kc.hook && r.source === kc.source && r.effect === kc.effect)!;
  assert.ok(key, 'the named key claim was measured');
  assert.ok(report.claims[0].statement.startsWith(`${key.circuit}: clean patch`), report.claims[0].statement);
  assert.match(report.summary, /Key claim \(named in the config\)/);
  checkFigures(dir, report);
});

test.run();
