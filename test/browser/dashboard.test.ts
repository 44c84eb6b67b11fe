// The explorer's feature-dashboard view (scripts/explorer/dashboard.ts) on a quick run, in headless
// Chromium: the page for a latent (#sae=<id>&latent=<j>) fills every panel from step 3's export
// (histogram bars, top contexts with the firing token highlighted, quantile examples, logits,
// correlates) with the values in that file; the search box finds latents by number and by token;
// the console stays clean and nothing outside 127.0.0.1 is requested. Screenshot: docs/dashboard.png.
import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { NeuronpediaBatchJson } from '../../interp/sae/dashboard.ts';
import { startExplorer } from '../../scripts/explore.ts';
import { SAE_DIR } from '../../steps/artefacts.ts';
import type { SaeRow } from '../../steps/step03-sae.ts';
import { browserAvailable, launchBrowser, openPage, assertQuietPage } from '../helpers/browser.ts';
import { quickRun } from '../helpers/quick-run.ts';

const SCREENSHOT =
  process.env.UPDATE_SCREENSHOTS === '1'
    ? resolve(import.meta.dirname, '../../docs/dashboard.png')
    : join(mkdtempSync(join(tmpdir(), 'mi-dashboard-shot-')), 'dashboard.png');

test('the dashboard page of a latent fills every panel from the export, and the search finds latents', async () => {
  if (!browserAvailable()) return console.log('# skipped: no Chromium (bash scripts/setup-chromium.sh)');
  const runDir = process.env.MI_EXPLORER_RUN_DIR ? resolve(process.env.MI_EXPLORER_RUN_DIR) : await quickRun();
  const row = JSON.parse(readFileSync(join(runDir, SAE_DIR, 'saes.json'), 'utf8'))[0] as SaeRow;
  const batch = JSON.parse(readFileSync(join(runDir, SAE_DIR, row.dashboard), 'utf8')) as NeuronpediaBatchJson;
  const f = batch.features.find((x) => x.activations.length && x.correlated_variables.length);
  assert.ok(f, 'a latent with contexts and correlates');
  const id = row.dashboard.split('/')[1];
  const explorer = await startExplorer({ runDir, port: 0 });
  const browser = (await launchBrowser({ webgpu: false }))!;
  try {
    const { page, log } = await openPage(browser, `${explorer.origin}/#sae=${encodeURIComponent(id)}&latent=${f.feature_index}`);
    await page.setViewportSize({ width: 1400, height: 1000 });
    await page.waitForSelector('#dash-top', { timeout: 120_000 });
    await page.waitForFunction(() => document.body.dataset.state === 'ready', undefined, { timeout: 120_000 });
    const got = await page.evaluate(() => ({
      bars: document.querySelectorAll('#dash-density svg.histogram rect').length,
      topRows: document.querySelectorAll('#dash-top .context').length,
      fire: document.querySelector('#dash-top .context .tok.fire')?.textContent ?? null,
      quantileRows: document.querySelectorAll('#dash-quantiles .context').length,
      quantileHeads: document.querySelectorAll('#dash-quantiles h3').length,
      logitRows: document.querySelectorAll('#dash-logits tr').length,
      firstLogit: document.querySelector('#dash-logits td.lat')?.textContent ?? null,
      correlates: [...document.querySelectorAll('#dash-correlates td.lat')].map((e) => e.textContent),
      missing: [...document.querySelectorAll('.missing, .error')].map((e) => e.textContent),
    }));
    assert.equal(got.missing, []);
    assert.is(got.bars, f.freq_hist_data_bar_heights.length);
    const top = f.activations.filter((a) => a.bin_min === -1);
    assert.is(got.topRows, top.length);
    assert.is(got.fire, top[0].tokens[top[0].qualifying_token_index]);
    assert.is(got.quantileRows, f.activations.length - top.length);
    assert.ok(got.quantileHeads >= 1);
    assert.is(got.logitRows, f.pos_str.length + 1);
    assert.is(got.firstLogit, f.pos_str[0]);
    assert.equal(
      got.correlates,
      f.correlated_variables.map((c) => c.variable),
    );
    mkdirSync(join(SCREENSHOT, '..'), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });

    // a token string finds the latents whose top context fires on it, this one among them
    await page.fill('#dash-search', `"${top[0].tokens[top[0].qualifying_token_index]}"`);
    await page.press('#dash-search', 'Enter');
    const hits = await page.evaluate(() => [...document.querySelectorAll('#dash-results a')].map((a) => a.getAttribute('href')));
    assert.ok(
      hits.some((h) => h?.endsWith(`latent=${f.feature_index}`)),
      `search hits ${hits}`,
    );
    // a number goes to that latent's page
    const other = (f.feature_index + 1) % batch.features.length;
    await page.fill('#dash-search', String(other));
    await page.press('#dash-search', 'Enter');
    await page.waitForFunction((j) => document.querySelector('.row')?.textContent?.includes(`latent ${j} of`), other, { timeout: 30_000 });
    assertQuietPage(log);
  } finally {
    await browser.close();
    await explorer.close();
  }
});

test.run();
