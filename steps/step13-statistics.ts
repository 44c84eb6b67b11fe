// Step 13: controls and statistics across the whole run. Every step states its claims with a test,
// an interval and a control (using interp/stats); this step treats all claims with a p-value as one
// family, applies Holm and Benjamini-Hochberg corrections across it, and shows every estimate next
// to its control.
import { benjaminiHochberg, holm } from '../interp/stats.ts';
import { fmt, intervalChart, type Claim } from '../interp/report/index.ts';
import { loadReports, saveFigure, saveReport } from './report-io.ts';
import type { Step } from './step.ts';
import { stepInfo } from './table.ts';

export const statisticsStep: Step = {
  ...stepInfo('statistics'),
  version: 1,
  needs: [],
  alwaysRun: true,
  configKeys: [],
  appliesToModel: true,
  async run(ctx) {
    const claims: (Claim & { step: number })[] = loadReports(ctx.runDir)
      .filter(({ report }) => report.step !== 13)
      .flatMap(({ report }) => report.claims.map((c) => ({ ...c, step: report.step })));
    const tested = claims.filter((c) => c.p !== undefined);
    const pHolm = holm(tested.map((c) => c.p!));
    const pBh = benjaminiHochberg(tested.map((c) => c.p!));
    const report = ctx.report();
    report.tables.push({
      title: `All ${claims.length} claims of the run; ${tested.length} with p-values corrected as one family`,
      columns: [
        'step',
        'claim',
        'estimate',
        'CI low',
        'CI high',
        'control',
        'control estimate',
        'test',
        'p',
        'p Holm',
        'p BH',
        'supported',
      ],
      rows: claims.map((c) => {
        const i = tested.indexOf(c);
        return [
          c.step,
          c.statement,
          c.estimate,
          c.interval[0],
          c.interval[1],
          c.control,
          c.controlEstimate ?? '',
          c.test,
          c.p ?? '',
          i >= 0 ? pHolm[i] : '',
          i >= 0 ? pBh[i] : '',
          c.supported ? 'yes' : 'no',
        ];
      }),
    });
    const survive = tested.filter((_, i) => pHolm[i] < 0.05).length;
    if (claims.length) {
      const rows = claims.flatMap((c, j) => {
        const label = `${j + 1}. step ${c.step}: ${c.statement.slice(0, 60)}`;
        const out = [{ claim: label, kind: 'estimate', value: c.estimate, lo: c.interval[0], hi: c.interval[1] }];
        if (c.controlEstimate !== undefined) {
          const ci = c.controlInterval ?? [c.controlEstimate, c.controlEstimate];
          out.push({ claim: label, kind: 'control', value: c.controlEstimate, lo: ci[0], hi: ci[1] });
        }
        return out;
      });
      report.figures.push(
        await saveFigure(
          ctx,
          'claims',
          intervalChart(rows, {
            title: 'Every claim next to its control',
            category: 'claim',
            value: 'value',
            lo: 'lo',
            hi: 'hi',
            color: 'kind',
            width: 420,
          }),
          'Claims and controls',
          'Point estimates with confidence intervals for each claim of the run (estimate) and for its control of the same size (control).',
        ),
      );
    }
    report.summary = claims.length
      ? `${claims.length} claims; ${tested.length} tested, ${survive} significant at 0.05 after Holm across the whole run.`
      : 'No step has stated a claim yet.';
    report.notes.push(
      "Methods: bootstrap percentile/BCa intervals, permutation tests with the +1 correction, Holm (family-wise) and Benjamini-Hochberg (false discovery rate) corrections, Cohen's d / Hedges' g effect sizes: interp/stats.ts, tested against known values in test/interp/stats.test.ts.",
    );
    saveReport(ctx, report);
    return report.summary + (tested.length ? ` Smallest Holm p ${fmt(Math.min(...pHolm))}.` : '');
  },
};
