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
import { tInterval } from '../helpers/seed-claims.ts';

test('step 4: probes held-out scores in range, selected dims valid, split by sequence, selectivity and baselines; isTrigger flagged as a function of the token', async () => {
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
    // a percentile interval need not hold the full-sample estimate exactly: an intercept-only probe's
    // R2 sits at -1e-7 or so, its resamples a hair either side
    assert.ok(p.interval![0] - 1e-6 <= p.heldOut && p.heldOut <= p.interval![1] + 1e-6, `${name}: interval ${p.interval} vs ${p.heldOut}`);
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
  // isTrigger is "the current token is TRIGGER": readable (from any hook), flagged, never claimed
  const rows = readIn<ProbeRow[]>(join(run, PROBES_DIR), 'probes.json');
  const trigger = rows.filter((p) => p.task === 'induction' && p.variable === 'isTrigger' && p.features === 'activations');
  assert.ok(trigger.length > 0, 'induction isTrigger probes');
  for (const p of trigger) {
    assert.is(p.determinedBy, 'token');
    assert.is(p.claimed, false);
  }
  // Some seed reads it well. Not every one on the quick run: with 22 training sequences in 3 folds
  // split by sequence, one fold's deviance can be far off the others', and the 1-SE rule then keeps
  // a large lambda (measured: the same rows give 0.50-0.85 over split seeds grouped, 0.87-0.91 split
  // by row, where rows of the training sequences are in every fold).
  assert.ok(
    trigger.some((p) => p.heldOut > 0.8 && p.selected.length > 0),
    `isTrigger: ${trigger.map((p) => p.heldOut)}`,
  );
  for (const r of rows) {
    const name = `${r.task}-s${r.seed} ${r.hook} ${r.features} ${r.variable}`;
    const c = collections.find((x) => x.task === r.task && x.seed === r.seed)!;
    assert.ok(r.trainSequences > 0 && r.testSequences > 0 && r.trainSequences + r.testSequences <= c.batch, `${name}: sequences`);
    assert.ok(Math.abs(r.selectivity - (r.heldOut - r.control!)) < 1e-9, `${name}: selectivity = score - control task`);
    assert.is(r.against, r.claimed ? 'random-init' : 'control-task', `${name}: headline comparison`);
    assert.equal(
      r.baselines.map((b) => b.against),
      r.claimed ? ['embeddings', 'random-init'] : [],
      `${name}: baselines`,
    );
    for (const b of r.baselines) assert.ok(Math.abs(b.difference - (r.heldOut - b.score)) < 1e-9, `${name}: minus ${b.against}`);
    const head = r.claimed ? r.baselines[1] : { difference: r.selectivity, p: r.selectivityP };
    assert.ok(Math.abs(r.difference - head.difference) < 1e-12 && r.p === head.p, `${name}: headline values`);
  }
  checkControlledReport(join(run, PROBES_DIR));
});

test('step 4: one claim per task x variable over every gate-passing seed; per-seed values, mean, t interval and Fisher p from the probe rows', async () => {
  const run = await quickRun();
  const dir = join(run, PROBES_DIR);
  const rows = readIn<ProbeRow[]>(dir, 'probes.json');
  const { claims } = readIn<{ claims: Claim[] }>(dir, 'report.json');
  const collections = loadCollections(run);
  // the claimed rows: each model's activation probes at its last probed hook (rows are in hook order)
  for (const r of rows) {
    const last = rows.filter((x) => x.task === r.task && x.seed === r.seed).at(-1)!.hook;
    assert.is(
      r.claimed,
      r.features === 'activations' && r.hook === last && r.determinedBy === null,
      `${r.task}-s${r.seed} ${r.hook} ${r.features} ${r.variable}: claimed`,
    );
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
    const randomInit = (r: ProbeRow) => r.baselines.find((b) => b.against === 'random-init')!.score;
    for (const r of seeds)
      assert.ok(Math.abs(r.difference - (r.heldOut - randomInit(r))) < 1e-9, `${key} s${r.seed}: probe minus random-init`);
    const v = seeds.map((r) => r.difference);
    const n = v.length,
      m = v.reduce((a, b) => a + b, 0) / n;
    const [lo, hi] = tInterval(v);
    assert.ok(Math.abs(c.estimate - m) < 1e-12, `${key}: estimate is the mean over seeds`);
    assert.ok(Math.abs(c.interval[0] - lo) < 1e-9 && Math.abs(c.interval[1] - hi) < 1e-9, `${key}: t interval ${c.interval}`);
    const f = fisherP(
      seeds.map((r) => r.p!),
      seeds.map((r) => r.pFloor),
    );
    assert.ok(Math.abs(c.p! - f.p) < 1e-12 && Math.abs(c.pFloor! - f.pFloor!) < 1e-15, `${key}: Fisher's p ${c.p} vs ${f.p}`);
    assert.ok(Math.abs(c.controlEstimate! - seeds.reduce((a, r) => a + randomInit(r), 0) / n) < 1e-12, `${key}: control`);
    assert.is(c.effect, lo > 0, `${key}: effect condition is the seeds' t interval above 0`);
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
