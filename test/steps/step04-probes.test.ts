// Step 4 (steps/step04-probes.ts) on the quick run: the content of probes.json, the figures and
// the claims.
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fisherP } from '../../interp/seeds.ts';
import type { Claim } from '../../interp/report/index.ts';
import { loadCollections, loadProbeRecords, loadSaeRecords, PROBES_DIR } from '../../steps/artefacts.ts';
import type { StepContext } from '../../steps/step.ts';
import { probeClaims, type ProbeRow } from '../../steps/step04-probes.ts';
import { quickRun } from '../helpers/quick-run.ts';
import { checkControlledReport, readIn } from '../helpers/step-report.ts';

test('step 4: probes held-out scores in range, selected dims valid, the induction trigger probe beats its control', async () => {
  const run = await quickRun();
  const probes = loadProbeRecords(run);
  assert.ok(probes.length > 0);
  const saes = loadSaeRecords(run);
  const collections = loadCollections(run);
  assert.ok(
    probes.some((p) => p.features === 'sae'),
    'probes on SAE latents',
  );
  for (const p of probes) {
    const name = `${p.task}-s${p.seed} ${p.hook} ${p.features} ${p.variable}`;
    if (p.metric === 'accuracy') {
      assert.is(p.kind, 'logistic');
      assert.ok(p.heldOut >= 0 && p.heldOut <= 1 && p.control! >= 0 && p.control! <= 1, name);
      assert.ok(p.chance >= 0.5 && p.chance <= 1, `${name}: chance ${p.chance}`);
    } else {
      assert.ok(p.kind === 'lasso' || p.kind === 'elasticnet');
      assert.ok(p.heldOut <= 1 && Number.isFinite(p.heldOut) && p.control! <= 1, name);
    }
    assert.ok(p.interval![0] <= p.heldOut && p.heldOut <= p.interval![1], `${name}: interval`);
    const cols =
      p.features === 'activations'
        ? collections.find((c) => c.task === p.task && c.seed === p.seed)!.hooks.find((h) => h.name === p.hook)!.dim
        : saes.find((s) => s.task === p.task && s.seed === p.seed && s.hook === p.hook && s.kind === p.saeKind)!.latents;
    assert.is(p.coefficients.length, p.selected.length);
    for (let i = 0; i < p.selected.length; i++) {
      assert.ok(Number.isInteger(p.selected[i]) && p.selected[i] >= 0 && p.selected[i] < cols, `${name}: dim ${p.selected[i]} of ${cols}`);
      assert.ok(p.coefficients[i] !== 0 && Number.isFinite(p.coefficients[i]));
      if (i) assert.ok(p.selected[i] > p.selected[i - 1]);
    }
  }
  const trigger = probes.filter((p) => p.task === 'induction' && p.variable === 'isTrigger' && p.features === 'activations');
  assert.ok(trigger.length > 0, 'induction isTrigger probes');
  for (const p of trigger) {
    assert.ok(
      p.heldOut > p.control! && p.interval![0] > p.controlInterval![1],
      `isTrigger ${p.hook} s${p.seed}: ${p.heldOut} vs control ${p.control}`,
    );
    assert.ok(p.heldOut > 0.8 && p.selected.length > 0);
  }
  checkControlledReport(join(run, PROBES_DIR));
});

/** scipy.stats.t.ppf(0.975, df) for df 1..4, so the test does not lean on interp/stats' quantile. */
const T975 = [Number.NaN, 12.7062047362, 4.30265272975, 3.18244630528, 2.7764451052];

test('step 4: one claim per task x variable over every gate-passing seed; per-seed values, mean, t interval and Fisher p from the probe rows', async () => {
  const run = await quickRun();
  const dir = join(run, PROBES_DIR);
  const rows = readIn<ProbeRow[]>(dir, 'probes.json');
  const { claims } = readIn<{ claims: Claim[] }>(dir, 'report.json');
  const collections = loadCollections(run);
  // the claimed rows: each model's activation probes at its last probed hook (rows are in hook order)
  for (const r of rows) {
    const last = rows.filter((x) => x.task === r.task && x.seed === r.seed).at(-1)!.hook;
    assert.is(r.claimed, r.features === 'activations' && r.hook === last, `${r.task}-s${r.seed} ${r.hook} ${r.features}: claimed`);
  }
  const groups = new Map<string, ProbeRow[]>();
  for (const r of rows.filter((x) => x.claimed)) groups.set(`${r.task} ${r.label}`, [...(groups.get(`${r.task} ${r.label}`) ?? []), r]);
  assert.is(claims.length, groups.size, 'one claim per task x variable');
  for (const [key, rs] of groups) {
    const { task } = rs[0];
    const seeds = [...rs].sort((a, b) => a.seed - b.seed);
    assert.is(seeds.length, collections.filter((c) => c.task === task).length, `${key}: every gate-passing seed`);
    const mine = claims.filter((c) => c.statement.startsWith(`On ${task} (`) && c.statement.includes(` reads ${seeds[0].variable} from `));
    assert.is(mine.length, 1, `${key}: one claim`);
    const c = mine[0];
    assert.equal(
      c.perSeed!.map((v) => [v.seed, v.model, v.value, v.p]),
      seeds.map((r) => [r.seed, `${task}-s${r.seed}`, r.difference, r.p]),
      `${key}: per-seed values are the probe rows'`,
    );
    for (const r of seeds) assert.ok(Math.abs(r.difference - (r.heldOut - r.control!)) < 1e-9, `${key} s${r.seed}: probe minus control`);
    const v = seeds.map((r) => r.difference);
    const n = v.length,
      m = v.reduce((a, b) => a + b, 0) / n;
    const sd = Math.sqrt(v.reduce((a, x) => a + (x - m) ** 2, 0) / (n - 1));
    const half = (T975[n - 1] * sd) / Math.sqrt(n);
    assert.ok(Math.abs(c.estimate - m) < 1e-12, `${key}: estimate is the mean over seeds`);
    assert.ok(
      Math.abs(c.interval[0] - (m - half)) < 1e-9 && Math.abs(c.interval[1] - (m + half)) < 1e-9,
      `${key}: t interval ${c.interval}`,
    );
    const f = fisherP(
      seeds.map((r) => r.p!),
      seeds.map((r) => r.pFloor),
    );
    assert.ok(Math.abs(c.p! - f.p) < 1e-12 && Math.abs(c.pFloor! - f.pFloor!) < 1e-15, `${key}: Fisher's p ${c.p} vs ${f.p}`);
    assert.ok(Math.abs(c.controlEstimate! - seeds.reduce((a, r) => a + r.control!, 0) / n) < 1e-12, `${key}: control`);
    assert.is(c.effect, m - half > 0, `${key}: effect condition is the seeds' t interval above 0`);
  }
});

test('step 4: a task with fewer than claimSeeds seeds is stated without a p-value, its seeds still shown', async () => {
  const run = await quickRun();
  const rows = readIn<ProbeRow[]>(join(run, PROBES_DIR), 'probes.json');
  const ctx = { config: { claimSeeds: 3, permutations: 65535 } } as unknown as StepContext;
  const { claims, points } = probeClaims(ctx, rows);
  assert.ok(claims.length > 0);
  for (const c of claims) assert.ok(c.p === undefined && c.test.includes('a claim needs 3') && c.perSeed!.length === 2, c.statement);
  assert.is(points.filter((p) => p.what === 'seed').length, rows.filter((r) => r.claimed).length);
});

test.run();
