// The run report as a person sees it: report.html from the quick pipeline, served from 127.0.0.1
// and opened in headless Chromium. Every figure must be a rendered SVG with data marks, nothing
// may be missing, the console must stay clean, and the page may request nothing but itself (it is
// meant to open offline). A second case renders one figure of every kind the report library makes,
// so the figure checks bite even while few steps produce figures. Saves docs/report.png for the README.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Page } from 'playwright-core';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  barChart,
  buildHtml,
  heatmap,
  histogram,
  intervalChart,
  lineChart,
  renderSvg,
  scatter,
  type StepReport,
} from '../../interp/report/index.ts';
import { loadReports } from '../../steps/report-io.ts';
import {
  browserAvailable,
  launchBrowser,
  openPage,
  assertQuietPage,
  serveDir,
  type PageLog,
  type TestBrowser,
} from '../helpers/browser.ts';
import { quickRun } from '../helpers/quick-run.ts';

const ROOT = resolve(import.meta.dirname, '../..');
// The README's picture is refreshed only when asked (UPDATE_SCREENSHOTS=1), so an ordinary test run
// leaves the tracked file alone; otherwise the screenshot goes to a temporary folder.
const SCREENSHOT =
  process.env.UPDATE_SCREENSHOTS === '1'
    ? join(ROOT, 'docs/report.png')
    : join(mkdtempSync(join(tmpdir(), 'mi-report-shot-')), 'report.png');
/** the top of the report: title, contents, timings and the first sections (a full page is tens of MB) */
const SHOT_HEIGHT = 2400;
const VIEWPORT = { width: 1280, height: 900 };

const skip = !browserAvailable();
const Report = suite('report.html in headless Chromium');
let browser: TestBrowser | null = null;

Report.before(async () => {
  if (!skip) browser = await launchBrowser();
});
Report.after(async () => {
  await browser?.close();
});

interface FigureState {
  file: string;
  hasSvg: boolean;
  width: number;
  height: number;
  marks: number;
  missing: boolean;
  right: number;
}

/** What each <figure> shows: its SVG's rendered size and how many data-mark shapes it draws. */
function inspectFigures(page: Page): Promise<FigureState[]> {
  return page.$$eval('figure', (figs) =>
    figs.map((f) => {
      const svg = f.querySelector('svg');
      const box = svg?.getBoundingClientRect();
      // Vega puts data marks in <g class="... role-mark ...">; axes, legends and the background
      // live elsewhere, so an empty chart has none.
      const shapes = svg ? [...svg.querySelectorAll('g.role-mark path, g.role-mark rect, g.role-mark line, g.role-mark circle')] : [];
      const drawn = shapes.filter((s) => {
        const b = (s as SVGGraphicsElement).getBBox();
        return b.width > 0 || b.height > 0;
      });
      return {
        file: f.getAttribute('data-file') ?? '(no data-file)',
        hasSvg: !!svg,
        width: box?.width ?? 0,
        height: box?.height ?? 0,
        marks: drawn.length,
        missing: !!f.querySelector('.missing'),
        right: box?.right ?? 0,
      };
    }),
  );
}

/** Everything wrong with the figures, one line each (empty when all rendered and fit the page). */
function figureProblems(figs: FigureState[], pageWidth: number): string[] {
  return figs.flatMap((f) =>
    [
      f.missing ? `${f.file}: "missing figure" placeholder` : '',
      f.hasSvg ? '' : `${f.file}: no <svg> in the <figure>`,
      f.hasSvg && !(f.width > 0 && f.height > 0) ? `${f.file}: SVG renders at ${f.width}x${f.height}` : '',
      f.hasSvg && f.marks === 0 ? `${f.file}: SVG has no drawn data marks` : '',
      f.right > pageWidth + 0.5 ? `${f.file}: SVG overflows the page (right edge ${f.right} > ${pageWidth})` : '',
    ].filter(Boolean),
  );
}

function assertOfflinePage(log: PageLog, pageUrl: string): void {
  assertQuietPage(log);
  assert.equal(log.requests, [pageUrl], 'the page requested something besides itself');
}

async function pageWidth(page: Page): Promise<{ client: number; scroll: number }> {
  return page.evaluate(() => ({ client: document.documentElement.clientWidth, scroll: document.documentElement.scrollWidth }));
}

Report('quick run: every step and figure rendered, clean console, no requests, screenshot saved', async () => {
  if (skip) return;
  const runDir = await quickRun();
  const steps = loadReports(runDir).map((l) => l.report);
  const server = await serveDir(runDir);
  try {
    const url = server.url('report.html');
    const { page, log } = await openPage(browser!, url);
    await page.setViewportSize(VIEWPORT);
    const sections = await page.$$eval('section[id^="step-"]', (s) => s.map((e) => e.id));
    assert.equal(
      sections,
      steps.map((r) => `step-${r.step}`),
      'one section per finished step, in order',
    );
    const figs = await inspectFigures(page);
    assert.equal(
      figs.map((f) => f.file),
      steps.flatMap((r) => r.figures.map((f) => `${r.step}/${f.file}`)),
      "figures in the page vs the steps' records",
    );
    const width = await pageWidth(page);
    assert.equal(figureProblems(figs, width.client), [], 'figure problems');
    assert.ok(width.scroll <= width.client, `page scrolls sideways (${width.scroll} > ${width.client} px)`);
    assert.not.ok((await page.textContent('body'))?.includes('missing figure'), 'text "missing figure" in the page');
    mkdirSync(join(SCREENSHOT, '..'), { recursive: true });
    const png = await page.screenshot({ fullPage: true, clip: { x: 0, y: 0, width: VIEWPORT.width, height: SHOT_HEIGHT } });
    assert.equal([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'screenshot is a PNG');
    assert.equal(png.readUInt32BE(16), VIEWPORT.width, 'screenshot width');
    writeFileSync(SCREENSHOT, png);
    await page.close();
    assertOfflinePage(log, url);
  } finally {
    await server.close();
  }
});

Report('every kind of figure the report library makes renders in Chromium; a missing one is caught', async () => {
  if (skip) return;
  const xs = Array.from({ length: 20 }, (_, i) => i);
  const specs = {
    line: lineChart(
      xs.map((x) => ({ step: x, loss: 1 / (x + 1), run: x % 2 ? 'a' : 'b' })),
      { title: 'loss', x: 'step', y: 'loss', color: 'run', logY: true },
    ),
    heat: heatmap(
      [
        [0.1, 0.5, NaN],
        [1, -1, 0.2],
      ],
      { title: 'heat', rowTitle: 'layer', colTitle: 'position' },
    ),
    interval: intervalChart(
      [
        { k: 'effect', v: 0.4, lo: 0.2, hi: 0.6 },
        { k: 'control', v: 0.01, lo: -0.1, hi: 0.1 },
      ],
      { title: 'ci', category: 'k', value: 'v', lo: 'lo', hi: 'hi' },
    ),
    bar: barChart(
      [
        { c: 'x', n: 3, g: 'p' },
        { c: 'y', n: 5, g: 'q' },
      ],
      { title: 'bars', x: 'c', y: 'n', color: 'g' },
    ),
    hist: histogram(
      xs.map((x) => Math.sin(x) + 2),
      { title: 'hist', xTitle: 'value', logX: true },
    ),
    scatter: scatter(
      xs.map((x) => ({ a: x, b: x * x })),
      { title: 'scatter', x: 'a', y: 'b' },
    ),
  };
  const svgs = new Map<string, string>();
  for (const [name, spec] of Object.entries(specs)) svgs.set(`1/${name}.svg`, await renderSvg(spec));
  // an empty chart (axes, no data) and an absent file must both be reported
  svgs.set('1/empty.svg', await renderSvg(lineChart([], { title: 'no data', x: 'step', y: 'loss' })));
  const figures = [...svgs.keys(), '1/absent.svg'].map((file) => ({ file, title: file, caption: `caption of ${file}` }));
  const report: StepReport = { step: 1, title: 'figures', summary: 'every figure kind', claims: [], figures, tables: [], notes: [] };
  const dir = mkdtempSync(join(tmpdir(), 'mi-report-kinds-'));
  const server = await serveDir(dir);
  try {
    writeFileSync(
      join(dir, 'report.html'),
      buildHtml([report], svgs, { title: 't', runDir: dir, backend: 'cpu', seed: 1, createdAt: 'now', timings: [] }),
    );
    const url = server.url('report.html');
    const { page, log } = await openPage(browser!, url);
    await page.setViewportSize(VIEWPORT);
    const figs = await inspectFigures(page);
    const width = await pageWidth(page);
    assert.equal(
      figs.map((f) => f.file),
      figures.map((f) => f.file),
    );
    assert.equal(figureProblems(figs, width.client), [
      '1/empty.svg: SVG has no drawn data marks',
      '1/absent.svg: "missing figure" placeholder',
      '1/absent.svg: no <svg> in the <figure>',
    ]);
    await page.close();
    assertOfflinePage(log, url);
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

Report.run();
