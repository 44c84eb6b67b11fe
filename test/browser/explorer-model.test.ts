// The explorer on a --model run (no step 1): the server serves the checkpoint the run's config.json
// names at /model/ and says so in /run-index.json; the page runs it as the run's one model, on
// the task the run studied it on (repeated random tokens), with the Node CPU run's logits within
// 1e-5 of their largest magnitude. Three times: the tiny fixture checkpoint as it is (token ids), a
// copy with a word-level tokenizer.json beside it (text, tokenised as in Node), and that copy in a
// --text run (studied on a text file: the page's task is "text"). Headless Chromium,
// CPU backend (the server's answers are checked without Chromium too); step 0 alone writes each
// run's config.json (a few seconds). A run whose config.json is broken gets a 500 naming it, and
// the server keeps serving.
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import * as mi from '../../engine/index.ts';
import { SPECIAL_TOKENS, wordTokenizerJson } from '../../interp/text/word-tokenizer.ts';
import { loadPretrained } from '../../mamba/pretrained.ts';
import { startExplorer, type RunIndex } from '../../scripts/explore.ts';
import { assertLogitsClose, assertQuietPage, browserAvailable, launchBrowser, openPage, waitReady } from '../helpers/browser.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const TINY = resolve(ROOT, '../shared/fixtures/hf-mamba/tiny/model');
const READY_TIMEOUT_MS = 120_000;
const WORDS =
  'the of and to a in is it that was he for on are with as his they at be this from have or by one had not but what all were when we there can an your which their said if do will each about how up out them then she many some so these would other into has more her two'.split(
    ' ',
  );

interface Snapshot {
  model: { task: string; dir: string };
  ids: number[];
  text: string | null;
  strTokens: string[] | null;
  logits: number[];
}

const base = mkdtempSync(join(tmpdir(), 'mi-explorer-model-'));
process.once('exit', () => rmSync(base, { recursive: true, force: true }));

/** A --model run of `checkpoint` (on `text` when given): step 0 writes the config.json that names it; steps 2 and 3 its SAEs. */
function modelRun(name: string, checkpoint: string, steps: string[], text?: string): string {
  const out = join(base, name);
  for (const step of steps) {
    const args = ['--import', 'tsx', join(ROOT, 'steps/run.ts'), '--step', step, '--quick', '--backend', 'cpu'];
    if (text) args.push('--text', text);
    execFileSync(process.execPath, [...args, '--model', checkpoint, '--out', out], { cwd: ROOT, stdio: 'pipe', timeout: 120_000 });
  }
  return out;
}

/** A small text file of the tokenizer's words, for a --text run. */
function textFile(): string {
  const p = join(base, 'notes.txt');
  writeFileSync(p, Array.from({ length: 40 }, (_, i) => WORDS.slice(i % 20, (i % 20) + 12).join(' ')).join('\n'));
  return p;
}

/** The tiny checkpoint with a word-level tokenizer.json of its 64 ids beside it. */
function withTokenizer(): string {
  const dir = join(base, 'tiny-words');
  if (existsSync(dir)) return dir;
  mkdirSync(dir);
  for (const f of ['config.json', 'model.safetensors']) copyFileSync(join(TINY, f), join(dir, f));
  const tokens = [...SPECIAL_TOKENS, ...WORDS.slice(0, 64 - SPECIAL_TOKENS.length)];
  assert.is(tokens.length, 64);
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(wordTokenizerJson({ tokens, ids: new Map(tokens.map((t, i) => [t, i])) })));
  return dir;
}

const Model = suite('explorer server and page on a --model run');
const skip = !browserAvailable();

// [name, with a tokenizer, a --text run (the model studied on the text, task "text")]
const VARIANTS: [string, boolean, boolean][] = [
  ['token ids', false, false],
  ['with a tokenizer: text', true, false],
  ['a --text run: text', true, true],
];
for (const [what, tokenizer, onText] of VARIANTS) {
  Model(`the --model checkpoint is served and run in the page (${what})`, async () => {
    const checkpoint = tokenizer ? withTokenizer() : TINY;
    // the SAEs once (steps 2-3 take about 15 s): the page must find them under the study model's task and seed
    const name = onText ? 'text' : tokenizer ? 'words' : 'ids';
    const runDir = modelRun(name, checkpoint, tokenizer ? ['0'] : ['0', '2', '3'], onText ? textFile() : undefined);
    const task = onText ? 'text' : 'repeated-tokens';
    const explorer = await startExplorer({ runDir, port: 0 });
    // the server's side runs without Chromium too
    const browser = skip ? null : (await launchBrowser({ webgpu: false }))!;
    const model = await loadPretrained(checkpoint, { backend: mi.cpuBackend() });
    try {
      const index = (await (await fetch(`${explorer.origin}/run-index.json`)).json()) as RunIndex;
      assert.equal(index.present, tokenizer ? [] : ['step-03-sae/saes.json'], 'no models.json or circuits for the page to read');
      assert.equal(index.tokenizers, []);
      assert.is(index.pretrained?.task, task);
      assert.is(index.pretrained?.tokenizer, tokenizer);
      assert.is(index.pretrained?.taskOptions.seqLen, 32, onText ? "the run's train.seqLen" : "the run's copying.seqLen");
      const served = await fetch(`${explorer.origin}/model/config.json`);
      assert.is(served.status, 200);
      assert.is(await served.text(), readFileSync(join(checkpoint, 'config.json'), 'utf8'));
      assert.is((await fetch(`${explorer.origin}/model/..%2f..%2fconfig.json`)).status, 403, 'nothing outside the checkpoint');
      if (!browser) return;

      const { page, log } = await openPage(browser, `${explorer.origin}/`);
      await waitReady(page, READY_TIMEOUT_MS);
      const s = await page.evaluate(() => (globalThis as unknown as { explorer: { snapshot(): Snapshot } }).explorer.snapshot());
      assert.is(s.model.dir, 'pretrained');
      assert.is(s.model.task, task);
      if (tokenizer) {
        assert.ok(s.text, 'text mode');
        assert.equal(s.ids, model.toTokens(s.text!)[0]);
        assert.equal(s.strTokens, model.toStrTokens(s.text!));
      } else {
        assert.is(s.text, null);
        assert.ok(await page.evaluate(() => !!document.getElementById('tokens')), 'the token-id box');
        assert.is(s.ids.length, 32, 'a sampled repeated-tokens sequence');
        const sae = await page.evaluate(() => ({
          missing: document.querySelector('#sae .missing')?.textContent ?? null,
          cells: document.querySelectorAll('#sae td.latent').length,
        }));
        assert.is(sae.missing, null, `SAE panel: ${sae.missing}`);
        assert.ok(sae.cells > 0, "the run's SAEs of the checkpoint show");
      }
      const want = mi.tidy(() => mi.noGrad(() => model.forward([s.ids])).dataSync() as Float32Array);
      assertLogitsClose(s.logits, want, 'page logits');
      assertQuietPage(log);
      assert.ok(
        log.requests.some((u) => u.endsWith('/model/model.safetensors')),
        'the page loaded the checkpoint from /model/',
      );
    } finally {
      model.dispose();
      await browser?.close();
      await explorer.close();
    }
  });
}

Model('a broken config.json of the run: /run-index.json is a 500 naming the file, and the server keeps serving', async () => {
  const runDir = join(base, 'broken');
  mkdirSync(runDir);
  writeFileSync(join(runDir, 'config.json'), '{"model": ');
  const explorer = await startExplorer({ runDir, port: 0 });
  try {
    for (const path of ['/run-index.json', '/model/config.json']) {
      const res = await fetch(`${explorer.origin}${path}`);
      assert.is(res.status, 500, path);
      assert.match(await res.text(), /^explore: .*broken\/config\.json: /);
    }
    assert.is((await fetch(`${explorer.origin}/run/config.json`)).status, 200);
  } finally {
    await explorer.close();
  }
});

Model.run();
