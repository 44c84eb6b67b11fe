// Step 6 (steps/step06-patching.ts) on the quick run: patching effects with ordered intervals and
// p-values, next to their controls; claims and figures.
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Comparison } from '../../interp/patching.ts';
import type { StepReport } from '../../interp/report/index.ts';
import { quickRun } from '../helpers/quick-run.ts';
import { checkFigures, inOrder, readIn } from '../helpers/step-report.ts';

test('step 6: effects with ordered intervals, p in [0, 1], controls present, claims with test/interval/control', async () => {
  const dir = join(await quickRun(), 'step-06-patching');
  const rows = readIn<
    {
      circuit: string;
      effect: string;
      controls: number;
      comparison: Comparison;
      pHolm: number;
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
    assert.ok(c.p > 0 && c.p <= 1 && r.pHolm >= c.p && r.pHolm <= 1);
  }
  const report = readIn<StepReport>(dir, 'report.json');
  assert.ok(report.claims.length > 0);
  for (const c of report.claims) {
    assert.ok(c.test && c.control && c.interval[0] <= c.interval[1] && c.controlEstimate !== undefined && c.p !== undefined);
  }
  assert.match(report.summary, /restores/);
  checkFigures(dir, report);
});

test.run();
