// The explorer (scripts/explore.ts) on a --quick run, in headless Chromium with WebGPU: the page
// loads a trained model of the run over 127.0.0.1 and computes its logits on the page's backend;
// they must match the Node CPU run of the same checkpoint on the same input within 1e-5 of their
// largest magnitude (mamba/parity.ts's measure), both for the sampled input and for one typed into
// the page. The page must log no error, request nothing outside 127.0.0.1, and fill every panel.
// It leaves a screenshot in docs/explorer.png (the README shows it).
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Page } from 'playwright-core';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import * as mi from '../../engine/index.ts';
import { loadTrainedModel, loadTrainedModels } from '../../steps/artefacts.ts';
import { startExplorer, type Explorer } from '../../scripts/explore.ts';
import {
  assertLogitsClose,
  assertQuietPage,
  browserAvailable,
  launchBrowser,
  openPage,
  waitReady,
  type PageLog,
  type TestBrowser,
} from '../helpers/browser.ts';
import { quickRun } from '../helpers/quick-run.ts';

/** SwiftShader compiles every WGSL pipeline on first use: about 30 s on two busy cores. */
const READY_TIMEOUT_MS = 240_000;
// The README's picture is refreshed only when asked (UPDATE_SCREENSHOTS=1), so an ordinary test run
// leaves the tracked file alone.
const SCREENSHOT =
  process.env.UPDATE_SCREENSHOTS === '1'
    ? resolve(import.meta.dirname, '../../docs/explorer.png')
    : join(mkdtempSync(join(tmpdir(), 'mi-explorer-shot-')), 'explorer.png');

interface Snapshot {
  model: { task: string; seed: number; dir: string };
  task: string;
  ids: number[];
  logits: number[];
  T: number;
  V: number;
  backend: string;
}

const ExplorerSuite = suite('explorer page (npm run explore) in headless Chromium');
const skip = !browserAvailable();
let runDir = '';
let explorer: Explorer | null = null;
let browser: TestBrowser | null = null;
let page: Page;
let log: PageLog;

const ready = (p: Page) => waitReady(p, READY_TIMEOUT_MS);

const snapshot = (p: Page) => p.evaluate(() => (globalThis as unknown as { explorer: { snapshot(): Snapshot } }).explorer.snapshot());

/** max |page - Node CPU| over the logits of `s.ids`, against 1e-5 of the largest |Node logit|. */
async function compareWithNode(s: Snapshot): Promise<void> {
  const rec = loadTrainedModels(runDir).find((m) => m.dir === s.model.dir);
  assert.ok(rec, `models.json has no ${s.model.dir}`);
  const model = await loadTrainedModel(runDir, rec!, { backend: mi.cpuBackend() });
  try {
    const want = mi.tidy(() => mi.noGrad(() => model.forward([s.ids])).dataSync() as Float32Array);
    assertLogitsClose(s.logits, want, `page logits (${s.backend})`);
  } finally {
    model.dispose();
  }
}

let setupError: Error | null = null;

ExplorerSuite.before(async () => {
  if (skip) return;
  try {
    // MI_EXPLORER_RUN_DIR=<dir> points the suite at an existing run directory instead
    runDir = process.env.MI_EXPLORER_RUN_DIR ? resolve(process.env.MI_EXPLORER_RUN_DIR) : await quickRun();
    explorer = await startExplorer({ runDir, port: 0 });
    browser = await launchBrowser({ webgpu: true });
    ({ page, log } = await openPage(browser!, `${explorer.origin}/`));
    await page.setViewportSize({ width: 1400, height: 1000 });
  } catch (e) {
    // uvu does not report a failing before hook by itself: every test below throws this instead
    setupError = e as Error;
  }
});

/** The page, once set up; the setup's error otherwise. */
function setUp(): void {
  if (setupError) throw new Error(`explorer suite setup failed: ${setupError.message}`);
}

ExplorerSuite.after(async () => {
  await browser?.close();
  await explorer?.close();
});

ExplorerSuite('the page runs the first model on WebGPU and its logits match Node CPU within 1e-5', async () => {
  if (skip) return;
  setUp();
  await ready(page);
  const s = await snapshot(page);
  assert.match(s.backend, /^webgpu \(/, `backend: ${s.backend}`);
  assert.is(s.T, s.ids.length);
  assert.is(s.logits.length, s.T * s.V);
  await compareWithNode(s);
});

ExplorerSuite('every panel shows its result: predictions, accuracy, temporal map, SAE latents, ablation effect', async () => {
  if (skip) return;
  setUp();
  await ready(page);
  const got = await page.evaluate(() => ({
    predictions: document.querySelectorAll('#predictions td').length,
    accuracy: document.getElementById('accuracy')?.textContent ?? '',
    heatmapCells: document.querySelectorAll('#temporal svg rect').length,
    saeCells: document.querySelectorAll('#sae td.latent').length,
    saeMissing: document.querySelector('#sae .missing')?.textContent ?? null,
    ablation: document.getElementById('ablation-effect')?.textContent ?? '',
    errors: [...document.querySelectorAll('.error')].map((e) => e.textContent),
  }));
  const T = (await snapshot(page)).T;
  assert.equal(got.errors, []);
  assert.ok(got.predictions >= 4 * T, `predictions table has ${got.predictions} cells for T=${T}`);
  assert.match(got.accuracy, /scored accuracy on this sequence: \d+\/\d+; on 32 sampled sequences: [01]\.\d{3}/);
  assert.is(got.heatmapCells, T * T + 1, 'a T x T heat map plus its frame');
  // the quick run trains SAEs (step 3): the panel must show them, not the "missing" note
  assert.is(got.saeMissing, null, `SAE panel: ${got.saeMissing}`);
  assert.ok(got.saeCells > 0, 'no SAE latent cells');
  assert.match(
    got.ablation,
    /zeroing .+: scored accuracy on this sequence \d+\/\d+ → \d+\/\d+; on 32 sampled sequences [01]\.\d{3} → [01]\.\d{3}/,
  );
  mkdirSync(join(SCREENSHOT, '..'), { recursive: true });
  await page.screenshot({ path: SCREENSHOT, fullPage: true });
});

ExplorerSuite('an input typed into the page gives the Node CPU logits of that input', async () => {
  if (skip) return;
  setUp();
  await ready(page);
  const before = await snapshot(page);
  // change one token that is not the first (BOS) to another id of the vocabulary
  const ids = [...before.ids];
  ids[3] = (ids[3] + 1) % before.V;
  await page.fill('#tokens', ids.join(' '));
  await page.click('#run');
  // done when the page shows predictions for the typed ids and nothing is queued
  await page.waitForFunction(
    (want) =>
      document.body.dataset.state === 'ready' &&
      (globalThis as unknown as { explorer: { snapshot(): Snapshot } }).explorer.snapshot().ids.join(' ') === want,
    ids.join(' '),
    { timeout: READY_TIMEOUT_MS },
  );
  await ready(page);
  const after = await snapshot(page);
  assert.equal(after.ids, ids);
  await compareWithNode(after);
});

ExplorerSuite('the page logged no error and requested nothing outside 127.0.0.1', async () => {
  if (skip) return;
  setUp();
  await ready(page);
  assertQuietPage(log);
  assert.ok(
    log.requests.some((u) => u.includes('/run/step-01-train/')),
    'the page never fetched a checkpoint of the run',
  );
});

ExplorerSuite(
  'without WebGPU the page says so and falls back to the CPU backend (WebAssembly kernels), with the same logits as Node',
  async () => {
    if (skip) return;
    setUp();
    const cpuBrowser = (await launchBrowser({ webgpu: false }))!;
    try {
      // Chromium without --enable-unsafe-webgpu offers no adapter here: the page's own fallback path
      const opened = await openPage(cpuBrowser, `${explorer!.origin}/`);
      await ready(opened.page);
      const s = await snapshot(opened.page);
      assert.match(s.backend, /^CPU backend/);
      // the WebAssembly kernels, compiled by initBackend('cpu'), not the scalar fallback
      assert.match(s.backend, /^CPU backend: cpu \(browser, WebAssembly SIMD, 1 thread\)$/, `backend line: ${s.backend}`);
      const note = await opened.page.evaluate(() => document.getElementById('backend-note')?.textContent ?? '');
      assert.match(note, /fallback: /, `backend note: ${note}`);
      await compareWithNode(s);
      assert.equal([...opened.log.consoleErrors, ...opened.log.pageErrors], []);
    } finally {
      await cpuBrowser.close();
    }
  },
);

ExplorerSuite.run();
