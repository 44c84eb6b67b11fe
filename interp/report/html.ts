// The run report: one self-contained report.html (figures inlined as SVG, no scripts, no network
// requests) and a report.md summary.
import { POLICY, pText, verdict } from '../claims.ts';
import type { Claim, StepReport, Table } from './types.ts';

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

export function fmt(v: number | string | null | undefined): string {
  // an empty cell (no value for this row) is written as nothing
  if (v === undefined || v === null) return '';
  if (typeof v === 'string') return v;
  if (!Number.isFinite(v)) return String(v);
  if (Number.isInteger(v)) return String(v);
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e5) ? v.toExponential(2) : v.toFixed(a < 1 ? 4 : 3);
}

function claimText(c: Claim): string {
  // the correction is run-wide: a step's page shows raw p, its floor and, once corrected, Holm and BH
  const corrected = c.pAdjusted !== undefined ? ` (${c.correction ?? 'run-wide Holm'}: ${fmt(c.pAdjusted)}; BH q ${fmt(c.qBh)})` : '';
  const p = c.p !== undefined ? `, ${pText(c, fmt)}${corrected}` : ', no p-value';
  const ctl =
    c.controlEstimate !== undefined
      ? `; control (${c.control}): ${fmt(c.controlEstimate)}${c.controlInterval ? ` [${fmt(c.controlInterval[0])}, ${fmt(c.controlInterval[1])}]` : ''}`
      : `; control: ${c.control}`;
  const seeds = c.perSeed?.length
    ? `; per seed: ${c.perSeed.map((v) => `${v.model} ${fmt(v.value)}${v.p !== undefined ? ` (p ${fmt(v.p)})` : ''}`).join(', ')}`
    : '';
  const cond = `${seeds}; effect condition (${c.condition}): ${c.effect ? 'met' : 'not met'}`;
  return `${verdict(c)}: ${c.statement} Estimate ${fmt(c.estimate)}, ${Math.round(c.level * 100)}% CI [${fmt(c.interval[0])}, ${fmt(c.interval[1])}] (${c.test}${p})${ctl}${cond}.`;
}

/** The class of a claim's list item: yes (supported), no, or pending (not corrected yet). */
export const claimClass = (c: Claim) => (c.status === 'pending' ? 'pending' : c.supported ? 'yes' : 'no');

// Lets long identifiers in table cells (blocks.1.hook_resid_post, selective-copying-s0) wrap at
// their separators rather than push the table past the page; numbers never break.
const breakable = (s: string) => esc(s).replace(/([._/-])(?=[A-Za-z])/g, '$1<wbr>');

function tableHtml(t: Table): string {
  // the wrapper scrolls sideways instead of the page when a table has too many columns to fit
  return (
    `<div class="table-wrap"><table><caption>${esc(t.title)}</caption><thead><tr>${t.columns.map((c) => `<th>${esc(c)}</th>`).join('')}</tr></thead>` +
    `<tbody>${t.rows.map((r) => `<tr>${r.map((v) => (typeof v === 'number' ? `<td class="num">${esc(fmt(v))}</td>` : `<td>${breakable(fmt(v))}</td>`)).join('')}</tr>`).join('')}</tbody></table></div>`
  );
}

function tableMd(t: Table): string {
  return (
    `**${t.title}**\n\n| ${t.columns.join(' | ')} |\n| ${t.columns.map(() => '---').join(' | ')} |\n` +
    t.rows.map((r) => `| ${r.map((v) => fmt(v)).join(' | ')} |`).join('\n') +
    '\n'
  );
}

export interface ReportMeta {
  title: string;
  runDir: string;
  backend: string;
  seed: number;
  createdAt: string;
  timings: { step: number; title: string; seconds: number }[];
}

/** `svgs` maps a figure's file (as in FigureRef.file, relative to the run directory) to its SVG text. */
export function buildHtml(reports: StepReport[], svgs: Map<string, string>, meta: ReportMeta): string {
  const sections = reports
    .map((r) => {
      const figs = r.figures
        .map((f) => {
          const svg = svgs.get(f.file);
          return `<figure data-file="${esc(f.file)}">${svg ?? `<p class="missing">missing figure ${esc(f.file)}</p>`}<figcaption><b>${esc(f.title)}.</b> ${esc(f.caption)}</figcaption></figure>`;
        })
        .join('\n');
      const claims = r.claims.length
        ? `<ul class="claims">${r.claims.map((c) => `<li class="${claimClass(c)}">${esc(claimText(c))}</li>`).join('')}</ul><p class="note">${esc(POLICY)}</p>`
        : '';
      const notes = r.notes.map((n) => `<p class="note">${esc(n)}</p>`).join('');
      return `<section id="step-${r.step}"><h2>${r.step}. ${esc(r.title)}</h2><p class="summary">${esc(r.summary)}</p>${claims}${notes}${r.tables.map(tableHtml).join('')}<div class="figs">${figs}</div></section>`;
    })
    .join('\n');
  const toc = reports.map((r) => `<li><a href="#step-${r.step}">${r.step}. ${esc(r.title)}</a></li>`).join('');
  const timing = tableHtml({
    title: 'Time per step',
    columns: ['step', 'title', 'seconds'],
    rows: meta.timings.map((t) => [t.step, t.title, t.seconds]),
  });
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(meta.title)}</title>
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<style>
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{margin-bottom:.2em} section{border-top:1px solid #ddd;margin-top:2em}
.table-wrap{max-width:100%;overflow-x:auto} table{border-collapse:collapse;margin:1em 0;font-size:.9em} caption{text-align:left;font-weight:bold;margin-bottom:.3em}
td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left} th{background:#f4f4f4}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap} ol.toc{list-style:none;padding-left:1em}
.figs{display:flex;flex-wrap:wrap;gap:1em} figure{margin:0;max-width:100%} figure svg{max-width:100%;height:auto}
figcaption{font-size:.85em;max-width:480px} .claims li.yes{color:#145a32} .claims li.no{color:#7b241c} .claims li.pending{color:#7d6608}
.note{font-size:.9em;color:#555} .meta{color:#555}
</style></head><body>
<h1>${esc(meta.title)}</h1>
<p class="meta">Run ${esc(meta.runDir)} · backend ${esc(meta.backend)} · seed ${meta.seed} · ${esc(meta.createdAt)}</p>
<ol class="toc">${toc}</ol>
${timing}
${sections}
</body></html>
`;
}

export function buildMarkdown(reports: StepReport[], meta: ReportMeta): string {
  const lines = [
    `# ${meta.title}`,
    '',
    `Run \`${meta.runDir}\`, backend ${meta.backend}, seed ${meta.seed}, ${meta.createdAt}. Figures are in report.html.`,
    '',
  ];
  lines.push(
    tableMd({ title: 'Time per step', columns: ['step', 'title', 'seconds'], rows: meta.timings.map((t) => [t.step, t.title, t.seconds]) }),
  );
  for (const r of reports) {
    lines.push(`## ${r.step}. ${r.title}`, '', r.summary, '');
    for (const c of r.claims) lines.push(`- ${claimText(c)}`);
    if (r.claims.length) lines.push('', POLICY, '');
    for (const n of r.notes) lines.push(n, '');
    for (const t of r.tables) lines.push(tableMd(t));
  }
  return lines.join('\n');
}
