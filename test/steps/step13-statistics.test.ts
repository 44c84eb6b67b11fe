// Step 13 (steps/step13-statistics.ts) on the quick run: its family is exactly the claims of every
// other step (read here from their report.json files, none dropped or duplicated), and its Holm,
// BH and supported columns are what Holm and BH by their definitions give on that family.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { StepReport } from '../../interp/report/index.ts';
import { quickRun } from '../helpers/quick-run.ts';
import { checkFigures, readIn } from '../helpers/step-report.ts';

/** By rank r of m (sorted ascending): Holm min(1, max_{k<=r} (m-k) p_(k)); BH min_{k>=r} m p_(k) / (k+1). */
function adjustByDefinition(p: number[]): { holm: number[]; bh: number[] } {
  const m = p.length;
  const order = p.map((_, i) => i).sort((a, b) => p[a] - p[b]);
  const holm = new Array<number>(m),
    bh = new Array<number>(m);
  order.forEach((idx, r) => {
    let h = 0,
      q = Infinity;
    for (let k = 0; k <= r; k++) h = Math.max(h, (m - k) * p[order[k]]);
    for (let k = r; k < m; k++) q = Math.min(q, (m * p[order[k]]) / (k + 1));
    holm[idx] = Math.min(1, h);
    bh[idx] = Math.min(1, q);
  });
  return { holm, bh };
}

test("step 13: the family is every other step's claims, once each; Holm, BH and supported by definition", async () => {
  const run = await quickRun();
  const dir = join(run, 'step-13-statistics');
  const report = readIn<StepReport>(dir, 'report.json');
  assert.is(report.step, 13);
  const claims = readdirSync(run)
    .filter((d) => /^step-\d\d-/.test(d) && !d.startsWith('step-13-') && existsSync(join(run, d, 'report.json')))
    .sort()
    .flatMap((d) => {
      const r = JSON.parse(readFileSync(join(run, d, 'report.json'), 'utf8')) as StepReport;
      return r.claims.map((c) => ({ step: r.step, ...c }));
    });
  const steps = new Set(claims.map((c) => c.step));
  assert.ok(steps.size >= 5, `claims from steps ${[...steps]}`);
  const table = report.tables[0];
  const col = (name: string) => {
    const i = table.columns.indexOf(name);
    assert.ok(i >= 0, `column ${name}`);
    return i;
  };
  assert.is(table.rows.length, claims.length, 'one row per claim of the run');
  // same claims in the same order: a dropped, duplicated or reordered claim fails here
  assert.equal(
    table.rows.map((r) => [r[col('step')], r[col('claim')], r[col('raw p')], r[col('floor')]]),
    claims.map((c) => [c.step, c.statement, c.p ?? '', c.pFloor ?? '']),
  );
  const tested = claims.filter((c) => c.p !== undefined);
  const { holm, bh } = adjustByDefinition(tested.map((c) => c.p!));
  let k = 0;
  table.rows.forEach((row, i) => {
    const c = claims[i];
    if (c.p === undefined) {
      assert.equal([row[col('Holm p')], row[col('BH q')], row[col('supported')]], ['', '', 'no'], c.statement);
      return;
    }
    const [h, q] = [row[col('Holm p')] as number, row[col('BH q')] as number];
    assert.ok(
      Math.abs(h - holm[k]) <= 1e-12 && Math.abs(q - bh[k]) <= 1e-12,
      `${c.statement}: Holm ${h} vs ${holm[k]}, BH ${q} vs ${bh[k]}`,
    );
    assert.is(row[col('supported')], c.effect && holm[k] < 0.05 ? 'yes' : 'no', c.statement);
    assert.is(row[col('condition met')], c.effect ? 'yes' : 'no');
    const binds = c.pFloor !== undefined && c.p <= c.pFloor * (1 + 1e-9);
    assert.is(row[col('floor binds')] !== '', binds, `${c.statement}: floor binds`);
    k++;
  });
  assert.match(
    report.summary,
    new RegExp(`^${claims.length} claims; ${tested.length} tested, ${holm.filter((h) => h < 0.05).length} significant`),
  );
  checkFigures(dir, report);
});

test.run();
