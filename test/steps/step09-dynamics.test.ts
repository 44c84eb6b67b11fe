// Step 9 (steps/step09-dynamics.ts) on the quick run: time constants positive, Abar in (0, 1],
// step-Jacobian eigenvalues finite and matching Abar, figures present; trigger-delta claims per
// task x layer over seeds, recomputed here from the per-model tests (trigger.json).
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { StepReport } from '../../interp/report/index.ts';
import { QUICK_OVERRIDES } from '../../steps/config.ts';
import type { TauBaseline, TriggerTest } from '../../steps/step09-dynamics.ts';
import { quickRun } from '../helpers/quick-run.ts';
import { checkSeedClaim, tInterval } from '../helpers/seed-claims.ts';
import { checkClaims, checkFigures, readIn } from '../helpers/step-report.ts';

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
  const report = readIn<StepReport>(dir, 'report.json');
  checkFigures(dir, report, { minChars: 1000 });
  checkClaims({ ...report, claims: report.claims.filter((c) => c.p !== undefined) });
});

test('step 9: trigger-delta claims per task x layer over seeds, recomputed from the per-model tests', async () => {
  const dir = join(await quickRun(), 'step-09-dynamics');
  const tests = readIn<TriggerTest[]>(dir, 'trigger.json');
  const report = readIn<StepReport>(dir, 'report.json');
  assert.ok(tests.length > 0, 'the quick run has induction models');
  const keys = [...new Set(tests.map((t) => `${t.task} ${t.layer}`))];
  assert.is(report.claims.length, keys.length, 'one claim per task x layer');
  for (const key of keys) {
    const [task, layer] = key.split(' ');
    const rows = tests.filter((t) => t.task === task && t.layer === Number(layer));
    const claim = report.claims.find((c) => c.statement.startsWith(`${task} (`) && c.statement.includes(` layer ${layer}:`));
    assert.ok(claim, key);
    checkSeedClaim(
      claim,
      rows.map((t) => ({ model: t.model, seed: t.seed, value: t.difference, p: t.p, pFloor: t.pFloor })),
      QUICK_OVERRIDES.claimSeeds!,
      key,
    );
    const ctl = rows.map((t) => t.control);
    assert.ok(Math.abs(claim.controlEstimate! - ctl.reduce((a, b) => a + b, 0) / ctl.length) < 1e-12, `${key}: control`);
    if (rows.length >= 2) {
      const [clo, chi] = tInterval(ctl);
      assert.is(claim.effect, claim.interval[0] > chi || claim.interval[1] < clo, `${key}: disjoint from the control's t interval`);
    }
  }
});

/** The quantile as interp/stats.ts defines it (linear interpolation, numpy's default), written out here. */
function q(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  const h = (s.length - 1) * p,
    lo = Math.floor(h);
  return s[lo] + (h - lo) * ((s[Math.min(lo + 1, s.length - 1)] ?? s[lo]) - s[lo]);
}

test('step 9: time constants beside the fresh-initialisation baseline and the task distances; the Jacobian spectrum labelled a check', async () => {
  const dir = join(await quickRun(), 'step-09-dynamics');
  const base = readIn<TauBaseline[]>(dir, 'time-constants.json');
  const out = readIn<{ label: string; layers: { tau: number[] }[] }[]>(dir, 'dynamics.json');
  assert.is(
    base.length,
    out.reduce((a, m) => a + m.layers.length, 0),
    'a row per model and layer',
  );
  for (const b of base) {
    const tau = out.find((m) => m.label === b.model)!.layers[b.layer].tau;
    [0.1, 0.5, 0.9].forEach((p, i) =>
      assert.ok(Math.abs(b.trained[i] - q(tau, p)) <= 1e-9 * q(tau, p), `${b.model} layer ${b.layer}: quantile ${p}`),
    );
    // the quick run's tasks all have answer sources ([null, null] is a language model's)
    const [median, largest] = b.distance as [number, number];
    assert.ok(median >= 1 && median <= largest, `distances ${b.distance}`);
    assert.is(b.reachTrained, tau.filter((v) => v >= median).length / tau.length);
    assert.is(b.reachMaxTrained, tau.filter((v) => v >= largest).length / tau.length);
    assert.is(b.reachInit.length, QUICK_OVERRIDES.dynamics!.initSeeds!);
    for (const v of [...b.reachInit, ...b.reachMaxInit, ...b.init]) assert.ok(Number.isFinite(v) && v >= 0);
    // the baseline is other models: a trained model's time constants are not its initialisation's
    assert.ok(b.init.some((v, i) => v !== b.trained[i]));
  }
  const report = readIn<StepReport>(dir, 'report.json');
  assert.ok(report.tables.some((t) => t.title.startsWith('Time constants per model and layer against')));
  assert.ok(report.tables.some((t) => t.title.startsWith('Solver check, not a finding')));
});

test.run();
