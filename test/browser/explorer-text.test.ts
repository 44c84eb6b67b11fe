// The explorer (scripts/explore.ts) on a language model: steps 0-3 of `--preset text --quick` (one
// seed, no SAE sweep: the Brown model with its word-level tokenizer.json, and its SAEs), in headless
// Chromium on the CPU backend (test/browser/explorer.test.ts covers WebGPU against the CPU). The page
// must take text: tokenised in the page exactly as the tokenizer does in Node (toStrTokens), every
// panel labelled with the tokens as strings, the top next-token predictions those of the Node run's
// logits (which the page's equal within 1e-5 of their largest magnitude), bad text refused with a
// note, no console error and no request outside 127.0.0.1. MI_EXPLORER_TEXT_RUN_DIR=<dir> reuses a run.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Page } from 'playwright-core';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import * as mi from '../../engine/index.ts';
import type { MambaLM } from '../../mamba/model.ts';
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

const ROOT = resolve(import.meta.dirname, '../..');
const READY_TIMEOUT_MS = 120_000;
// the README's picture, refreshed only when asked (UPDATE_SCREENSHOTS=1)
const SCREENSHOT =
  process.env.UPDATE_SCREENSHOTS === '1'
    ? resolve(ROOT, 'docs/explorer-text.png')
    : join(mkdtempSync(join(tmpdir(), 'mi-explorer-text-shot-')), 'explorer-text.png');

interface Snapshot {
  model: { task: string; seed: number; dir: string };
  ids: number[];
  text: string | null;
  strTokens: string[] | null;
  top: { token: number; prob: number }[][] | null;
  logits: number[];
  T: number;
  V: number;
  backend: string;
}

/** Steps 0-3 of the text preset's quick run, one model: what the explorer shows of a language model. */
function textRun(): string {
  if (process.env.MI_EXPLORER_TEXT_RUN_DIR) return resolve(process.env.MI_EXPLORER_TEXT_RUN_DIR);
  const dir = mkdtempSync(join(tmpdir(), 'mi-explorer-text-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const config = join(dir, 'small.json');
  writeFileSync(config, JSON.stringify({ train: { seeds: 1 }, sae: { sweepHooks: [] } }));
  const out = join(dir, 'run');
  for (const step of ['0', '1', '2', '3']) {
    const args = ['--import', 'tsx', join(ROOT, 'steps/run.ts'), '--step', step, '--preset', 'text', '--quick'];
    execFileSync(process.execPath, [...args, '--backend', 'cpu', '--config', config, '--out', out], {
      cwd: ROOT,
      stdio: 'pipe',
      timeout: 600_000,
    });
  }
  return out;
}

const Text = suite('explorer page on a language model: text input');
const skip = !browserAvailable();
let runDir = '';
let explorer: Explorer | null = null;
let browser: TestBrowser | null = null;
let page: Page;
let log: PageLog;
let model: MambaLM | null = null;
let setupError: Error | null = null;

Text.before(async () => {
  if (skip) return;
  try {
    runDir = textRun();
    const rec = loadTrainedModels(runDir)[0];
    model = await loadTrainedModel(runDir, rec, { backend: mi.cpuBackend() });
    explorer = await startExplorer({ runDir, port: 0 });
    browser = await launchBrowser({ webgpu: false });
    ({ page, log } = await openPage(browser!, `${explorer.origin}/`));
    await page.setViewportSize({ width: 1400, height: 1000 });
  } catch (e) {
    setupError = e as Error;
  }
});

Text.after(async () => {
  model?.dispose();
  await browser?.close();
  await explorer?.close();
});

function setUp(): MambaLM {
  if (setupError) throw new Error(`explorer text suite setup failed: ${setupError.message}`);
  return model!;
}

const ready = (p: Page) => waitReady(p, READY_TIMEOUT_MS);

const snapshot = (p: Page) => p.evaluate(() => (globalThis as unknown as { explorer: { snapshot(): Snapshot } }).explorer.snapshot());

/** The text cells of the row named `name` of the table in `panel`. */
const rowCells = (p: Page, panel: string, name: string) =>
  p.evaluate(
    ([panel, name]) => {
      const tr = [...document.querySelectorAll(`#${panel} table.positions tr`)].find((r) => r.querySelector('th')?.textContent === name);
      return tr ? [...tr.querySelectorAll('td')].map((td) => td.textContent ?? '') : null;
    },
    [panel, name],
  );

/**
 * The snapshot against Node: ids and string tokens from the tokenizer, the logits of the same
 * checkpoint on the CPU within 1e-5 of their largest magnitude, and the top next tokens (ids, their
 * probabilities, and the strings the predictions table shows) from those logits.
 */
async function compareWithNode(s: Snapshot): Promise<void> {
  const m = setUp();
  assert.ok(s.text !== null && s.strTokens && s.top, 'the page is in text mode');
  assert.equal(s.ids, m.toTokens(s.text!)[0], 'ids: the tokenizer in Node');
  assert.equal(s.strTokens, m.toStrTokens(s.text!), 'string tokens: toStrTokens in Node');
  assert.equal(await rowCells(page, 'predictions', 'input'), s.strTokens, 'the input row shows the string tokens');
  const want = mi.tidy(() => mi.noGrad(() => m.forward([s.ids])).dataSync() as Float32Array);
  assertLogitsClose(s.logits, want, `page logits (${s.backend})`);
  const V = s.V;
  for (let t = 0; t < s.T; t++) {
    const row = want.subarray(t * V, (t + 1) * V);
    const max = Math.max(...row);
    const z = row.reduce((a, v) => a + Math.exp(v - max), 0);
    const order = Array.from(row.keys()).sort((a, b) => row[b] - row[a] || a - b);
    s.top![t].forEach((x, k) => {
      assert.is(x.token, order[k], `position ${t}: top ${k + 1}`);
      const p = Math.exp(row[x.token] - max) / z;
      assert.ok(Math.abs(x.prob - p) < 1e-4, `position ${t}: top ${k + 1} probability ${x.prob} vs ${p}`);
    });
  }
  for (let k = 0; k < s.top![0].length; k++) {
    const cells = await rowCells(page, 'predictions', `top ${k + 1}`);
    assert.equal(
      cells,
      s.top!.map((x) => m.toString([x[k].token])),
      `the top ${k + 1} row shows the predicted tokens as strings`,
    );
  }
}

Text('a language model gets a text box; its default text is tokenised as in Node and its logits match Node CPU', async () => {
  if (skip) return;
  setUp();
  await ready(page);
  const got = await page.evaluate(() => ({
    text: !!document.getElementById('text'),
    tokens: !!document.getElementById('tokens'),
    task: !!document.getElementById('task'),
  }));
  assert.equal(got, { text: true, tokens: false, task: false }, 'a text box, no token-id box or task sampler');
  const s = await snapshot(page);
  assert.match(s.backend, /^CPU backend/);
  await compareWithNode(s);
});

Text('typed text of another length: string tokens everywhere, the top next tokens of Node, accuracy said not to apply', async () => {
  if (skip) return;
  const m = setUp();
  await ready(page);
  // a word outside the 500-word vocabulary becomes <unk>; 9 tokens, not the default text's length
  const text = 'The old man said it was zyzzyva in the city';
  await page.fill('#text', text);
  await page.click('#run');
  await page.waitForFunction(
    (want) =>
      document.body.dataset.state === 'ready' &&
      (globalThis as unknown as { explorer: { snapshot(): Snapshot } }).explorer.snapshot().text === want,
    text,
    { timeout: READY_TIMEOUT_MS },
  );
  await ready(page);
  const s = await snapshot(page);
  assert.equal(s.strTokens, ['the', 'old', 'man', 'said', 'it', 'was', '<unk>', 'in', 'the', 'city']);
  await compareWithNode(s);
  const panels = await page.evaluate(() => ({
    accuracy: document.getElementById('accuracy')?.textContent ?? '',
    ticks: [...document.querySelectorAll('#temporal svg text.tick')].map((e) => e.textContent),
    cells: document.querySelectorAll('#temporal svg rect').length,
    saeInputs: [...document.querySelectorAll('#sae table.latents tr')].slice(1).map((r) => r.children[1]?.textContent),
    saeCells: document.querySelectorAll('#sae td.latent').length,
    ablation: document.getElementById('ablation-effect')?.textContent ?? '',
    ablationNext: [...document.querySelectorAll('#ablation table.positions tr')]
      .find((r) => r.querySelector('th')?.textContent === 'next')
      ?.querySelectorAll('td').length,
    errors: [...document.querySelectorAll('.error')].map((e) => e.textContent),
  }));
  assert.equal(panels.errors, []);
  assert.match(panels.accuracy, /^per-task accuracy does not apply: a language model on free text has no task targets/);
  // each token twice (column and row labels), in order
  assert.equal(
    panels.ticks,
    s.strTokens!.flatMap((x) => [x, x]),
  );
  assert.is(panels.cells, s.T * s.T + 1);
  assert.equal(panels.saeInputs, s.strTokens, 'the SAE panel names each position by its token');
  assert.ok(panels.saeCells > 0, 'no SAE latent cells');
  assert.is(panels.ablationNext, s.T);
  assert.match(panels.ablation, /predictions changed; mean change of the log-probability of the text's next token -?\d/);
  assert.match(panels.ablation, /per-task accuracy does not apply/);
  assert.ok(s.T < m.toTokens('The man said that he would go to the city , but the old house was not there .')[0].length);
  mkdirSync(join(SCREENSHOT, '..'), { recursive: true });
  await page.screenshot({ path: SCREENSHOT, fullPage: true });
});

Text('empty text and text longer than the context are refused with a note; the last result stays', async () => {
  if (skip) return;
  setUp();
  await ready(page);
  const before = await snapshot(page);
  const cases: [string, RegExp][] = [
    ['   ', /^input: the text has no tokens/],
    [Array.from({ length: 49 }, () => 'the').join(' '), /^input: 49 tokens, more than this model's context of 48/],
  ];
  for (const [text, note] of cases) {
    await page.fill('#text', text);
    await page.click('#run');
    await ready(page);
    const got = await page.evaluate(() => {
      const el = document.getElementById('input-note')!;
      return { cls: el.className, text: el.textContent ?? '' };
    });
    assert.is(got.cls, 'error', text);
    assert.match(got.text, note);
    assert.equal((await snapshot(page)).ids, before.ids, 'the panels still show the last text');
  }
  // exactly the context is taken
  const longest = Array.from({ length: 48 }, () => 'the').join(' ');
  await page.fill('#text', longest);
  await page.click('#run');
  await ready(page);
  assert.is(await page.evaluate(() => document.getElementById('input-note')!.className), 'note');
  assert.is((await snapshot(page)).T, 48);
});

Text('the page logged no error and requested nothing outside 127.0.0.1 (no probe for a missing file)', async () => {
  if (skip) return;
  setUp();
  await ready(page);
  assertQuietPage(log);
  assert.ok(
    log.requests.some((u) => u.endsWith('/tokenizer.json')),
    'the page fetched the tokenizer',
  );
});

Text.run();
