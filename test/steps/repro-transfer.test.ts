// Steps 10-11 on the quick run: cross-seed reproducibility (SAE matching, CKA, circuit overlap) and
// cross-task transfer (SAEs, probes, circuits), checked for content: CKA of a model with itself is
// 1, fractions and accuracies in [0, 1], intervals ordered, figures present, claims complete.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { StepReport } from '../../interp/report/index.ts';
import { quickRun } from '../helpers/quick-run.ts';

const read = <T>(dir: string, file: string): T => JSON.parse(readFileSync(join(dir, file), 'utf8')) as T;
const ordered = (iv: number[], x: number, what: string) =>
  assert.ok(iv[0] <= x + 1e-9 && x <= iv[1] + 1e-9, `${what}: ${x} outside [${iv}]`);
const inUnit = (x: number, what: string) => assert.ok(x >= -1e-9 && x <= 1 + 1e-9, `${what}: ${x} not in [0, 1]`);

function checkReport(dir: string, step: number) {
  const report = read<StepReport>(dir, 'report.json');
  assert.is(report.step, step);
  assert.ok(report.summary.length > 0);
  assert.ok(report.figures.length > 0, `step ${step} has figures`);
  for (const f of report.figures) {
    const svg = readFileSync(join(dir, f.file), 'utf8');
    assert.ok(svg.startsWith('<svg') && svg.length > 500, `${f.file} is a non-empty SVG`);
  }
  assert.ok(report.claims.length > 0, `step ${step} states claims`);
  for (const c of report.claims) {
    assert.ok(c.test && c.control, `claim "${c.statement}" names its test and control`);
    assert.ok(c.interval[0] <= c.interval[1], `claim "${c.statement}" interval ordered`);
    assert.ok(Number.isFinite(c.estimate));
    if (c.p !== undefined) inUnit(c.p, 'p');
  }
  return report;
}

interface Repro {
  threshold: number;
  sae: {
    task: string;
    shared: number;
    sharedInterval: number[];
    control: number;
    controlInterval: number[];
    cosines: number[];
    latents: number;
  }[];
  cka: (
    | { task: string; layer: number; cka: number; interval: number[]; control: number; controlInterval: number[]; self: number }
    | { task: string; matrix: number[][] }
  )[];
  circuits: { channelJaccard: number; interval: number[]; control: number; positionJaccard: number }[];
}

test('step 10: shared latents, CKA (self = 1) and circuit overlap across seeds', async () => {
  const dir = join(await quickRun(), 'step-10-reproducibility');
  const r = read<Repro>(dir, 'reproducibility.json');
  assert.ok(r.sae.length >= 3, 'a seed pair per task');
  for (const s of r.sae) {
    inUnit(s.shared, 'shared fraction');
    inUnit(s.control, 'control fraction');
    ordered(s.sharedInterval, s.shared, `${s.task} shared`);
    ordered(s.controlInterval, s.control, `${s.task} control`);
    assert.is(s.cosines.length, s.latents, 'one matched cosine per latent');
    assert.ok(s.cosines.every((c) => c >= -1 - 1e-6 && c <= 1 + 1e-6));
  }
  const layers = r.cka.filter((x): x is Extract<Repro['cka'][number], { layer: number }> => 'layer' in x);
  assert.ok(layers.length >= 3);
  for (const c of layers) {
    assert.ok(Math.abs(c.self - 1) < 1e-9, `CKA of a model with itself is 1 (${c.self})`);
    inUnit(c.cka, 'CKA');
    inUnit(c.control, 'control CKA');
    ordered(c.interval, c.cka, 'CKA interval');
    ordered(c.controlInterval, c.control, 'control CKA interval');
  }
  for (const m of r.cka.filter((x): x is { task: string; matrix: number[][] } => 'matrix' in x)) {
    for (const row of m.matrix) for (const v of row) inUnit(v, 'CKA matrix entry');
  }
  for (const c of r.circuits) {
    inUnit(c.channelJaccard, 'channel Jaccard');
    inUnit(c.positionJaccard, 'position Jaccard');
    inUnit(c.control, 'random Jaccard');
    ordered(c.interval, c.channelJaccard, 'Jaccard interval');
  }
  checkReport(dir, 10);
});

interface Transfer {
  tasks: string[];
  sae: { from: string; to: string; fvu: number; fvuOwn: number; ratio: number; lo: number; hi: number; l0: number }[];
  probes: { from: string; to: string; accuracy: number; lo: number; hi: number; control: number; chance: number }[];
  circuits: { from: string; to: string; drop: number; ownDrop: number; ratio: number }[];
}

test('step 11: transfer matrices with the in-task diagonal', async () => {
  const dir = join(await quickRun(), 'step-11-transfer');
  const t = read<Transfer>(dir, 'transfer.json');
  const n = t.tasks.length;
  assert.is(t.probes.length, n * n, 'every ordered pair of tasks, diagonal included');
  for (const p of t.probes) {
    inUnit(p.accuracy, 'probe accuracy');
    inUnit(p.control, 'control accuracy');
    ordered([p.lo, p.hi], p.accuracy, `${p.from}->${p.to} probe`);
    assert.is(p.chance, 0.5);
  }
  // the diagonal is the in-task value: B's own SAE on B's activations
  for (const s of t.sae) {
    assert.ok(s.fvu >= 0 && s.l0 >= 0);
    if (s.from === s.to) {
      assert.ok(Math.abs(s.fvu - s.fvuOwn) < 1e-12);
      assert.ok(Math.abs(s.ratio - 1) < 1e-9);
    }
    ordered([s.lo, s.hi], s.ratio, `${s.from}->${s.to} SAE ratio`);
  }
  assert.ok(t.sae.length > 0, 'SAE transfer measured');
  for (const c of t.circuits) {
    if (c.from === c.to) assert.ok(Math.abs(c.drop - c.ownDrop) < 1e-12, 'diagonal = own circuit');
    inUnit(Math.abs(c.drop), 'accuracy drop');
  }
  checkReport(dir, 11);
});

test.run();
