// Step 13: controls and statistics across the whole run. Every step states its claims with a raw
// p-value, the floor of its test, an effect condition, an interval and a control; this step applies
// THE run-wide correction (report-io.ts correctRunClaims: Holm, with Benjamini-Hochberg beside, over
// every claim with a p-value) that also rewrites each step's report with the resulting flags, and
// tabulates it: raw p, floor, Holm p, BH q and supported are one computation, so they cannot disagree.
import { ALPHA, FLOOR_MARGIN, floorBinds, floorSurvives, POLICY, pText } from '../interp/claims.ts';
import { fmt, intervalChart } from '../interp/report/index.ts';
import { correctRunClaims, saveFigure, saveReport } from './report-io.ts';
import type { Step } from './step.ts';
import { stepInfo } from './table.ts';

export const statisticsStep: Step = {
  ...stepInfo('statistics'),
  version: 2,
  needs: [],
  alwaysRun: true,
  configKeys: [],
  appliesToModel: true,
  async run(ctx) {
    const claims = correctRunClaims(ctx.runDir)
      .filter((c) => c.step !== 13)
      .map(({ step, claim }) => ({ ...claim, step }));
    const tested = claims.filter((c) => c.p !== undefined);
    const m = tested.length;
    const report = ctx.report();
    report.tables.push({
      title: `All ${claims.length} claims of the run; ${m} with p-values corrected as one family (Holm, BH beside)`,
      columns: [
        'step',
        'claim',
        'estimate',
        'CI low',
        'CI high',
        'seeds',
        'per seed',
        'control',
        'control estimate',
        'test',
        'effect condition',
        'condition met',
        'raw p',
        'floor',
        'floor binds',
        'Holm p',
        'BH q',
        'supported',
      ],
      rows: claims.map((c) => [
        c.step,
        c.statement,
        c.estimate,
        c.interval[0],
        c.interval[1],
        c.perSeed?.length ?? '',
        c.perSeed?.map((v) => `${v.model} ${fmt(v.value)}`).join(', ') ?? '',
        c.control,
        c.controlEstimate ?? '',
        c.test,
        c.condition,
        c.effect ? 'yes' : 'no',
        c.p ?? '',
        c.pFloor ?? '',
        floorBinds(c) ? pText(c, fmt) : '',
        c.pAdjusted ?? '',
        c.qBh ?? '',
        c.supported ? 'yes' : 'no',
      ]),
    });
    const survive = tested.filter((c) => (c.pAdjusted as number) < ALPHA).length;
    const supported = claims.filter((c) => c.supported).length;
    const atFloor = tested.filter(floorBinds).length;
    const tooCoarse = tested.filter((c) => c.pFloor !== undefined && !floorSurvives(c.pFloor, m));
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
      ? `${claims.length} claims; ${m} tested, ${survive} significant at ${ALPHA} after Holm across the whole run, ${supported} supported (effect condition met as well); ${atFloor} p-values at their test's floor.`
      : 'No step has stated a claim yet.';
    report.notes.push(
      POLICY,
      tooCoarse.length
        ? `${tooCoarse.length} claims use a test whose floor is too coarse for this family: ${m} x floor > ${ALPHA}/${FLOOR_MARGIN} (steps ${[...new Set(tooCoarse.map((c) => c.step))].join(', ')}), so the test's resolution, not only the data, can decide them: too few permutations (raise the config's permutations) or, for an exact sign-flip test, too few values.`
        : `Every test's floor can survive the correction: ${m} x floor <= ${ALPHA}/${FLOOR_MARGIN} for each claim with a p-value, so the data, not the number of permutations, decide which claims survive.`,
    );
    report.notes.push(
      "Methods: bootstrap percentile/BCa intervals, permutation tests with the +1 correction, Holm (family-wise) and Benjamini-Hochberg (false discovery rate) corrections, Cohen's d / Hedges' g effect sizes: interp/stats.ts, tested against known values in test/interp/stats.test.ts.",
    );
    saveReport(ctx, report);
    return report.summary + (m ? ` Smallest Holm p ${fmt(Math.min(...tested.map((c) => c.pAdjusted as number)))}.` : '');
  },
};
