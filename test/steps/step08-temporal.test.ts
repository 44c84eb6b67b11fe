// Step 8 (steps/step08-temporal.ts) on the quick run: influence maps causal, long-range claims
// with intervals and controls, figures present.
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { StepReport } from '../../interp/report/index.ts';
import type { TemporalModelResult } from '../../steps/step08-temporal.ts';
import { quickRun } from '../helpers/quick-run.ts';
import { checkClaims, checkFigures, readIn } from '../helpers/step-report.ts';

/** SVG figures (one at least, over 1000 characters), claims with test, control, interval and p. */
function checkReport(dir: string, report: StepReport): void {
  checkFigures(dir, report, { minChars: 1000 });
  checkClaims(report);
}

test('step 8: causal influence maps, long-range share in [0, 1] with interval and control', async () => {
  const dir = join(await quickRun(), 'step-08-temporal');
  const results = readIn<TemporalModelResult[]>(dir, 'temporal.json');
  assert.ok(results.length >= 1);
  for (const r of results) {
    assert.is(r.maxAcausal, 0, `${r.label}: influence above the diagonal`);
    for (const m of [...r.residual.map((x) => x.map), ...r.state.map((x) => x.map), ...r.hiddenAttention.map((x) => x.meanAbs)]) {
      assert.is(m.length, r.seqLen);
      m.forEach((row, t) =>
        row.forEach((v, s) => {
          assert.ok(Number.isFinite(v));
          if (s > t) assert.is(v, 0);
        }),
      );
      assert.ok(m[r.seqLen - 1][r.seqLen - 1] > 0, 'the diagonal carries influence');
    }
    for (const v of [...r.longRange.task, ...r.longRange.random]) assert.ok(v >= 0 && v <= 1);
  }
  const report = readIn<StepReport>(dir, 'report.json');
  assert.is(report.claims.length, results.length);
  checkReport(dir, report);
});

test.run();
