// Steps 5-7 on the quick run: the artefacts' content (circuits with controls of equal size,
// patching effects with ordered intervals and p-values, noise curves starting at 0).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Circuit } from '../../steps/artefacts.ts';
import type { StepReport } from '../../interp/report/index.ts';
import { quickRun } from '../helpers/quick-run.ts';

const read = <T>(dir: string, file: string): T => JSON.parse(readFileSync(join(dir, file), 'utf8')) as T;
const ordered = (lo: number, x: number, hi: number) => lo <= x + 1e-9 && x <= hi + 1e-9;

function checkFigures(dir: string, report: StepReport) {
  assert.ok(report.figures.length > 0, `step ${report.step} has figures`);
  for (const f of report.figures) {
    const svg = readFileSync(join(dir, f.file), 'utf8');
    assert.ok(svg.startsWith('<svg') && svg.length > 500, `${f.file} is a non-empty SVG`);
  }
}

test('step 5: circuits on the residual stream and on the SSM state, each with controls of equal size', async () => {
  const dir = join(await quickRun(), 'step-05-circuits');
  const circuits = read<Circuit[]>(dir, 'circuits.json');
  assert.ok(
    circuits.some((c) => c.hook.endsWith('hook_resid_post')),
    'a residual circuit',
  );
  const state = circuits.filter((c) => c.hook.endsWith('.mixer.hook_h'));
  assert.ok(state.length > 0, 'a state circuit');
  assert.ok(
    state.every(
      (c) =>
        (typeof c.positions === 'object' && !Array.isArray(c.positions) && c.positions.label === 'sourcePos') || c.task !== 'induction',
    ),
  );
  for (const c of circuits) {
    const size = c.directions?.length ?? c.channels.length;
    assert.ok(size > 0, `${c.id} is not empty`);
    assert.ok(c.controls.length > 0, `${c.id} has controls`);
    for (const k of c.controls) {
      assert.is(k.directions?.length ?? k.channels.length, size, `${c.id}: a control of equal size`);
      if (!c.directions) assert.is(new Set(k.channels).size, size);
    }
  }
  const attribution = read<{ values: number[] }[]>(dir, 'attribution.json');
  assert.ok(attribution.length > 0 && attribution.every((a) => a.values.every(Number.isFinite)));
  checkFigures(dir, read<StepReport>(dir, 'report.json'));
});

test('step 6: effects with ordered intervals, p in [0, 1], controls present, claims with test/interval/control', async () => {
  const dir = join(await quickRun(), 'step-06-patching');
  const rows = read<
    {
      circuit: string;
      effect: string;
      controls: number;
      comparison: {
        estimate: number;
        interval: [number, number];
        control: number;
        controlInterval: [number, number];
        difference: number;
        differenceInterval: [number, number];
        p: number;
      };
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
    assert.ok(ordered(c.interval[0], c.estimate, c.interval[1]), `${r.circuit} ${r.effect}: estimate in its interval`);
    assert.ok(ordered(c.controlInterval[0], c.control, c.controlInterval[1]));
    assert.ok(ordered(c.differenceInterval[0], c.difference, c.differenceInterval[1]));
    assert.ok(c.p > 0 && c.p <= 1 && r.pHolm >= c.p && r.pHolm <= 1);
  }
  const report = read<StepReport>(dir, 'report.json');
  assert.ok(report.claims.length > 0);
  for (const c of report.claims) {
    assert.ok(c.test && c.control && c.interval[0] <= c.interval[1] && c.controlEstimate !== undefined && c.p !== undefined);
  }
  assert.match(report.summary, /restores/);
  checkFigures(dir, report);
});

test('step 7: noise curves start at 0 for scale 0 and have ordered bands, at three granularities', async () => {
  const dir = join(await quickRun(), 'step-07-perturb');
  const points = read<
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
    assert.ok(p.kl >= 0 && ordered(p.klCI[0], p.kl, p.klCI[1]) && ordered(p.accuracyDropCI[0], p.accuracyDrop, p.accuracyDropCI[1]));
  }
  const report = read<StepReport>(dir, 'report.json');
  assert.ok(report.claims.every((c) => c.p! > 0 && c.p! <= 1 && c.control));
  checkFigures(dir, report);
  assert.ok(existsSync(join(dir, 'tests.json')));
});

test.run();
