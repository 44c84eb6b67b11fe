// steps/report-io.ts correctRunClaims / writeRunReport: the run-wide correction is applied once and
// every artefact that carries a "supported" flag (each step's report.json, report.html, report.md,
// step 13's table) agrees with Holm across every claim of the run, computed here independently.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Claim, StepReport } from '../../interp/report/index.ts';
import { correctRunClaims, writeRunReport } from '../../steps/report-io.ts';
import { quickRun } from '../helpers/quick-run.ts';

/** Holm-adjusted p-values by the definition: at rank r, min(1, max over k <= r of (m - k) p_(k)). */
function holmByDefinition(p: number[]): number[] {
  const m = p.length;
  const order = p.map((_, i) => i).sort((a, b) => p[a] - p[b]);
  const out = new Array<number>(m);
  order.forEach((idx, r) => {
    let best = 0;
    for (let k = 0; k <= r; k++) best = Math.max(best, (m - k) * p[order[k]]);
    out[idx] = Math.min(1, best);
  });
  return out;
}

/** Every step folder's report.json of a run directory, in step order, read without steps/ code. */
function stepReports(run: string): StepReport[] {
  return readdirSync(run)
    .filter((d) => /^step-\d\d-[a-z0-9_-]+$/.test(d) && existsSync(join(run, d, 'report.json')))
    .sort()
    .map((d) => JSON.parse(readFileSync(join(run, d, 'report.json'), 'utf8')) as StepReport);
}

/** The expected flag of every claim of the run, in step order: effect && Holm over the whole run < 0.05. */
function expectedFlags(reports: StepReport[]): { step: number; claim: Claim; holm?: number; supported: boolean }[] {
  const all = reports.filter((r) => r.step !== 13).flatMap((r) => r.claims.map((claim) => ({ step: r.step, claim })));
  const tested = all.filter((a) => a.claim.p !== undefined);
  const h = holmByDefinition(tested.map((a) => a.claim.p!));
  return all.map((a) => {
    const k = tested.indexOf(a);
    return k < 0 ? { ...a, supported: false } : { ...a, holm: h[k], supported: a.claim.effect && h[k] < 0.05 };
  });
}

const claim = (statement: string, p: number | undefined, effect: boolean): Claim => ({
  statement,
  estimate: 1,
  interval: [0, 2],
  level: 0.95,
  test: 't',
  ...(p !== undefined ? { p } : {}),
  control: 'c',
  condition: 'interval above the control',
  effect,
  status: 'pending',
  supported: false,
});

function fakeRun(reports: StepReport[]): string {
  const run = mkdtempSync(join(tmpdir(), 'mi-claims-'));
  for (const r of reports) {
    const dir = join(run, `step-${String(r.step).padStart(2, '0')}-s${r.step}`);
    mkdirSync(dir);
    writeFileSync(join(dir, 'report.json'), JSON.stringify(r));
    writeFileSync(join(dir, 'done.json'), JSON.stringify({ seconds: 1 }));
  }
  return run;
}

test('correctRunClaims: one family over every step, written back into each report.json', () => {
  const rep = (step: number, claims: Claim[]): StepReport => ({
    step,
    title: `s${step}`,
    summary: '',
    claims,
    figures: [],
    tables: [],
    notes: [],
  });
  // 6 claims with p over 3 steps: within step 1 alone, b's p 0.02 would survive Holm (rank 2 of 2:
  // 0.02 x 1); across the run it is rank 4 of 6 and gets max(0.02 x 3, earlier) = 0.06 and does not.
  const reports = () => [
    rep(1, [claim('a', 0.001, true), claim('b', 0.02, true)]),
    rep(3, [claim('c', 0.005, false), claim('d', 0.3, true), claim('e', undefined, true)]),
    rep(4, [claim('f', 0.004, true), claim('g', 0.9, true)]),
  ];
  const run = fakeRun(reports());
  try {
    const out = correctRunClaims(run);
    assert.equal(
      out.map((c) => [c.step, c.index, c.claim.statement]),
      [
        [1, 0, 'a'],
        [1, 1, 'b'],
        [3, 0, 'c'],
        [3, 1, 'd'],
        [3, 2, 'e'],
        [4, 0, 'f'],
        [4, 1, 'g'],
      ],
    );
    const written = stepReports(run);
    const expected = expectedFlags(written);
    assert.equal(
      expected.map((e) => e.supported),
      [true, false, false, false, false, true, false],
    );
    const claims = written.flatMap((r) => r.claims);
    assert.equal(
      claims.map((c) => c.supported),
      expected.map((e) => e.supported),
      'report.json files carry the run-wide flags',
    );
    claims.forEach((c, i) => {
      if (expected[i].holm !== undefined) assert.ok(Math.abs(c.pAdjusted! - expected[i].holm!) < 1e-12, `${c.statement} Holm`);
    });
    assert.is(claims[4].status, 'untested');
  } finally {
    rmSync(run, { recursive: true, force: true });
  }
  // writeRunReport alone (as step 12 calls it) corrects first, then renders the same flags
  const fresh = fakeRun(reports());
  try {
    writeRunReport(fresh, 'fake', 'cpu', 1);
    assert.equal(
      stepReports(fresh).flatMap((r) => r.claims.map((c) => c.supported)),
      [true, false, false, false, false, true, false],
    );
    const html = readFileSync(join(fresh, 'report.html'), 'utf8');
    assert.equal(
      [...html.matchAll(/<li class="(yes|no|pending)">/g)].map((m) => m[1]),
      ['yes', 'no', 'no', 'no', 'no', 'yes', 'no'],
    );
    assert.match(html, /corrected across every claim of the run/);
  } finally {
    rmSync(fresh, { recursive: true, force: true });
  }
});

test('correctRunClaims: a NaN p-value (null in report.json) is one error naming the step and the claim', () => {
  const run = fakeRun([{ step: 8, title: 's8', summary: '', claims: [claim('x', Number.NaN, true)], figures: [], tables: [], notes: [] }]);
  try {
    assert.throws(() => correctRunClaims(run), /step 8 claim 1 \("x"\): p is null, not in \(0, 1\]/);
  } finally {
    rmSync(run, { recursive: true, force: true });
  }
});

test('quick run: every "supported" flag in every artefact agrees with Holm across the whole run', async () => {
  const run = await quickRun();
  const reports = stepReports(run);
  const expected = expectedFlags(reports);
  assert.ok(expected.filter((e) => e.holm !== undefined).length >= 10, `${expected.length} claims`);
  const yesNo = (b: boolean) => (b ? 'yes' : 'no');
  // each step's report.json: corrected (nothing left pending), flags and Holm as computed here
  for (const e of expected) {
    const what = `step ${e.step}: ${e.claim.statement}`;
    assert.is(e.claim.status, e.holm === undefined ? 'untested' : 'corrected', what);
    assert.is(e.claim.supported, e.supported, what);
    if (e.holm !== undefined) assert.ok(Math.abs(e.claim.pAdjusted! - e.holm) <= 1e-12 * Math.max(1, e.holm), `${what}: Holm`);
  }
  // report.html: each step's section lists its claims with the same classes, in order
  const html = readFileSync(join(run, 'report.html'), 'utf8');
  for (const r of reports.filter((x) => x.claims.length)) {
    const section = new RegExp(`<section id="step-${r.step}">([\\s\\S]*?)</section>`).exec(html)?.[1] ?? '';
    assert.equal(
      [...section.matchAll(/<li class="(yes|no|pending)">/g)].map((m) => m[1]),
      expected.filter((e) => e.step === r.step).map((e) => yesNo(e.supported)),
      `report.html step ${r.step}`,
    );
  }
  // report.md: the claim lines of each step's section
  const md = readFileSync(join(run, 'report.md'), 'utf8');
  for (const r of reports.filter((x) => x.claims.length)) {
    const part = md.split(/^## /m).find((s) => s.startsWith(`${r.step}. `)) ?? '';
    const verdicts = part
      .split('\n')
      .filter((l) => /^- (Supported|Not supported|Pending)/.test(l))
      .map((l) => (l.startsWith('- Supported') ? 'yes' : l.startsWith('- Pending') ? 'pending' : 'no'));
    assert.equal(
      verdicts,
      expected.filter((e) => e.step === r.step).map((e) => yesNo(e.supported)),
      `report.md step ${r.step}`,
    );
  }
  // step 13's table
  const t = reports.find((r) => r.step === 13)!.tables[0];
  const col = (name: string) => t.columns.indexOf(name);
  assert.equal(
    t.rows.map((row) => row[col('supported')]),
    expected.map((e) => yesNo(e.supported)),
    "step 13's table",
  );
});

test.run();
