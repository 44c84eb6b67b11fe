// Step 9 (steps/step09-dynamics.ts) on the quick run: time constants positive, Abar in (0, 1],
// step-Jacobian eigenvalues finite and matching Abar, figures present.
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { StepReport } from '../../interp/report/index.ts';
import { quickRun } from '../helpers/quick-run.ts';
import { checkClaims, checkFigures, readIn } from '../helpers/step-report.ts';

/** SVG figures (one at least, over 1000 characters), claims with test, control, interval and p. */
function checkReport(dir: string, report: StepReport): void {
  checkFigures(dir, report, { minChars: 1000 });
  checkClaims(report);
}

test('step 9: positive time constants, Abar in (0, 1], finite step-Jacobian eigenvalues matching Abar', async () => {
  const dir = join(await quickRun(), 'step-09-dynamics');
  const out = readIn<
    {
      label: string;
      layers: { tau: number[]; abarQuantiles: number[] }[];
      stepJacobian: { eigenvalues: { re: number; im: number }[]; abarMismatch: number | null; spectralRadius: number } | null;
      trajectories: { explained: number[] };
    }[]
  >(dir, 'dynamics.json');
  assert.ok(out.length >= 1);
  assert.ok(out.some((m) => m.stepJacobian));
  for (const m of out) {
    for (const l of m.layers) {
      for (const v of l.tau) assert.ok(v > 0 && Number.isFinite(v), `${m.label}: tau ${v}`);
      assert.ok(l.abarQuantiles[0] > 0 && l.abarQuantiles[4] <= 1);
    }
    assert.ok(m.trajectories.explained[0] > 0 && m.trajectories.explained[0] <= 1);
    if (m.stepJacobian) {
      for (const e of m.stepJacobian.eigenvalues) assert.ok(Number.isFinite(e.re) && Number.isFinite(e.im));
      assert.ok(m.stepJacobian.spectralRadius < 1, 'a stable step');
      assert.ok(
        m.stepJacobian.abarMismatch !== null && m.stepJacobian.abarMismatch < 1e-3,
        `eigenvalues vs Abar: ${m.stepJacobian.abarMismatch}`,
      );
    }
  }
  checkReport(dir, readIn<StepReport>(dir, 'report.json'));
});

test.run();
