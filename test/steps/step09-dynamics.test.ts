// Step 9 (steps/step09-dynamics.ts) on the quick run: time constants positive, Abar in (0, 1],
// step-Jacobian eigenvalues finite and matching Abar, figures present; trigger-delta claims per
// task x layer over seeds, recomputed here from the per-model tests (trigger.json).
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Claim, StepReport } from '../../interp/report/index.ts';
import { QUICK_OVERRIDES } from '../../steps/config.ts';
import type { TauBaseline, TriggerTest } from '../../steps/step09-dynamics.ts';
import { quickRun } from '../helpers/quick-run.ts';
import { checkClaims, checkFigures, readIn } from '../helpers/step-report.ts';

/** Student's t quantile at 0.975 for 1..4 degrees of freedom (scipy.stats.t.ppf). */
const T975 = [Number.NaN, 12.706204736174698, 4.302652729749464, 3.182446305284263, 2.7764451051977934];

/** The 95% t interval of a mean over seeds, computed here independently of interp/seeds.ts. */
function tInterval(xs: number[]): [number, number] {
  const n = xs.length,
    m = xs.reduce((a, b) => a + b, 0) / n;
  const sd = Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (n - 1));
  const h = (T975[n - 1] * sd) / Math.sqrt(n);
  return [m - h, m + h];
}

/** Fisher's combination in closed form: with q the product of the k p-values, p = q sum_{j<k} (-ln q)^j / j!. */
function fisher(ps: number[]): number {
  const q = ps.reduce((a, b) => a * b, 1),
    x = -Math.log(q);
  let term = 1,
    sum = 1;
  for (let j = 1; j < ps.length; j++) {
    term *= x / j;
    sum += term;
  }
  return Math.min(1, q * sum);
}

/**
 * A claim over seeds against the per-model rows it rests on: one seed per row (model, value, p),
 * estimate the mean of the values, interval the t interval over seeds, p Fisher's combination of
 * the rows' p (floors likewise) with at least `minSeeds` seeds, else no p and the test saying so.
 */
function checkSeedClaim(
  claim: Claim,
  rows: { model: string; seed: number; value: number; p: number; pFloor: number }[],
  minSeeds: number,
  what: string,
): void {
  assert.equal(
    claim.perSeed!.map((v) => [v.model, v.value, v.p]),
    rows.map((r) => [r.model, r.value, r.p]),
    `${what}: per-seed values are the per-model rows`,
  );
  assert.is(new Set(rows.map((r) => r.seed)).size, rows.length, `${what}: a model per seed`);
  const values = rows.map((r) => r.value);
  assert.ok(Math.abs(claim.estimate - values.reduce((a, b) => a + b, 0) / values.length) < 1e-12, `${what}: mean over seeds`);
  if (values.length >= 2) {
    const [lo, hi] = tInterval(values);
    assert.ok(Math.abs(claim.interval[0] - lo) < 1e-9 && Math.abs(claim.interval[1] - hi) < 1e-9, `${what}: t interval over seeds`);
  }
  if (rows.length >= minSeeds) {
    const p = Math.max(fisher(rows.map((r) => r.p)), fisher(rows.map((r) => r.pFloor)));
    assert.ok(Math.abs(claim.p! - p) < 1e-9 * p, `${what}: p ${claim.p} vs Fisher ${p}`);
    assert.ok(Math.abs(claim.pFloor! - fisher(rows.map((r) => r.pFloor))) < 1e-9 * claim.pFloor!, `${what}: floor`);
  } else {
    assert.is(claim.p, undefined, `${what}: fewer than ${minSeeds} seeds, no p`);
    assert.ok(claim.test.includes('only'), claim.test);
    assert.not.ok(claim.effect);
  }
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
    assert.ok(b.distance[0] >= 1 && b.distance[0] <= b.distance[1], `distances ${b.distance}`);
    assert.is(b.reachTrained, tau.filter((v) => v >= b.distance[0]).length / tau.length);
    assert.is(b.reachMaxTrained, tau.filter((v) => v >= b.distance[1]).length / tau.length);
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
