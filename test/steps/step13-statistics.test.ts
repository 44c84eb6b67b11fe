// Step 13 (steps/step13-statistics.ts) on the quick run: one row per claim of the other steps,
// Holm and Benjamini-Hochberg across every claim with a p-value, a figure of claims and controls.
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { StepReport } from '../../interp/report/index.ts';
import { loadReports } from '../../steps/report-io.ts';
import { quickRun } from '../helpers/quick-run.ts';
import { checkFigures, readIn } from '../helpers/step-report.ts';

test('step 13: every claim of the run, p <= p BH <= p Holm <= 1 where tested', async () => {
  const run = await quickRun();
  const dir = join(run, 'step-13-statistics');
  const report = readIn<StepReport>(dir, 'report.json');
  assert.is(report.step, 13);
  const claims = loadReports(run)
    .filter(({ report: r }) => r.step !== 13)
    .flatMap(({ report: r }) => r.claims.map((c) => ({ step: r.step, statement: c.statement, p: c.p })));
  assert.ok(claims.length > 0);
  const table = report.tables[0];
  const col = (name: string) => table.columns.indexOf(name);
  assert.is(table.rows.length, claims.length, 'one row per claim');
  table.rows.forEach((row, i) => {
    assert.is(row[col('step')], claims[i].step);
    assert.is(row[col('claim')], claims[i].statement);
    const p = row[col('p')];
    if (claims[i].p === undefined) {
      assert.is(p, '');
      return;
    }
    const [holm, bh] = [row[col('p Holm')] as number, row[col('p BH')] as number];
    assert.is(p, claims[i].p);
    assert.ok((p as number) <= bh + 1e-12 && bh <= holm + 1e-12 && holm <= 1, `${claims[i].statement}: p ${p}, BH ${bh}, Holm ${holm}`);
  });
  assert.match(report.summary, new RegExp(`^${claims.length} claims; ${claims.filter((c) => c.p !== undefined).length} tested`));
  checkFigures(dir, report);
});

test.run();
