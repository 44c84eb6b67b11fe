// Steps 8 and 9 on the quick run: influence maps causal, long-range claims with intervals and
// controls, time constants positive, eigenvalues finite, figures present.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { StepReport } from '../../interp/report/index.ts';
import type { TemporalModelResult } from '../../steps/step08-temporal.ts';
import { quickRun } from '../helpers/quick-run.ts';

const read = <T>(dir: string, file: string): T => JSON.parse(readFileSync(join(dir, file), 'utf8')) as T;

function checkFigures(dir: string, report: StepReport): void {
  assert.ok(report.figures.length > 0);
  for (const f of report.figures) {
    const p = join(dir, f.file);
    assert.ok(existsSync(p), `missing ${f.file}`);
    const svg = readFileSync(p, 'utf8');
    assert.ok(svg.startsWith('<svg') && svg.length > 1000, `${f.file} is not a non-empty SVG`);
  }
  for (const c of report.claims) {
    assert.ok(c.test.length > 0 && c.control.length > 0, `claim without test or control: ${c.statement}`);
    assert.ok(c.interval[0] <= c.estimate + 1e-12 && c.estimate <= c.interval[1] + 1e-12, `${c.statement}: estimate outside its interval`);
    assert.ok(c.p! > 0 && c.p! <= 1);
  }
}

test('step 8: causal influence maps, long-range share in [0, 1] with interval and control', async () => {
  const dir = join(await quickRun(), 'step-08-temporal');
  const results = read<TemporalModelResult[]>(dir, 'temporal.json');
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
  const report = read<StepReport>(dir, 'report.json');
  assert.is(report.claims.length, results.length);
  checkFigures(dir, report);
});

test('step 9: positive time constants, Abar in (0, 1], finite step-Jacobian eigenvalues matching Abar', async () => {
  const dir = join(await quickRun(), 'step-09-dynamics');
  const out = read<
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
  checkFigures(dir, read<StepReport>(dir, 'report.json'));
});

test.run();
