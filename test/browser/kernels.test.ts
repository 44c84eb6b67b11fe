// The engine in a real browser, unchanged: headless Chromium (--enable-unsafe-webgpu, SwiftShader)
// loads the esbuild bundle of browser.ts from http://127.0.0.1, fetches the tiny fixture
// checkpoint over 127.0.0.1 and runs it on the page's CPU backend (its WebAssembly SIMD kernels,
// one thread: the page's memory is not shared) and on its WebGPU, then runs the parity cases of
// test/engine/kernel-cases.ts (every kernel of engine/kernels.ts, NaN-poisoned outputs, the
// table's checks) twice: the page's WebAssembly CPU kernels against its scalar TypeScript ones
// (as test/engine/wasm/kernels.test.ts in Node), and the page's WebGPU against its CPU backend.
// The CPU logits must equal Node's WebAssembly CPU logits bit for bit (same code, same
// WebAssembly, and results that do not depend on the thread count); the WebGPU logits must match
// them within 1e-5 of their largest magnitude (mamba/parity.ts's measure). The page must log no
// error and request nothing outside 127.0.0.1. The page's tokenizer (the bundle's) must encode and
// decode the fixture tokenizer's cases as Hugging Face tokenizers does. One page run feeds every test below.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { CpuBackend } from '../../engine/cpu/backend.ts';
import { CPU_KERNELS } from '../../engine/cpu/kernels/index.ts';
import * as mi from '../../engine/index.ts';
import { loadPretrained } from '../../mamba/pretrained.ts';
import { toStrTokens } from '../../mamba/text.ts';
import { Tokenizer } from '../../mamba/tokenizer.ts';
import { BROWSER_OPTIONS, buildBrowserBundle, libraryFromBundle } from '../../scripts/build-browser.ts';
import { KERNEL_CASES, KERNEL_NAMES } from '../engine/kernel-cases.ts';
import type { PageReport, TextReport } from './page.ts';
import { browserAvailable, launchBrowser, openPage, assertQuietPage, serveDir, type PageLog } from '../helpers/browser.ts';
import { goldenIds, modelDir } from '../helpers/hf-fixture.ts';

/**
 * Generous: the page takes about 150 s on two idle cores (some 520 kernel cases on WebGPU, mostly
 * SwiftShader compiling WGSL and running the scans; the CPU pass adds about 10 s), and more than
 * twice that when other jobs hold the cores (PAGE_TIMEOUT_MS in the environment raises it).
 */
const PAGE_TIMEOUT_MS = Number(process.env.PAGE_TIMEOUT_MS ?? 600_000);
const Browser = suite('engine in headless Chromium (WebGPU)');
const skip = !browserAvailable();
const site = mkdtempSync(join(tmpdir(), 'mi-browser-kernels-'));
let report: PageReport | null = null;
let textReport: TextReport | null = null;
const TOKENIZER_DIR = resolve(import.meta.dirname, '../../../shared/fixtures/hf-mamba/tokenizer');
const textCases = JSON.parse(readFileSync(join(TOKENIZER_DIR, 'cases.json'), 'utf-8')) as {
  text: string;
  ids: number[];
  decoded: string;
}[];
let failure: Error | null = null;
let log: PageLog | null = null;
let nodeLogits: Float32Array;
let nodeShape: readonly number[];
// Node's CPU backend with its WebAssembly kernels, whatever MI_WASM says (the page has no MI_WASM)
const nodeCpu = new CpuBackend({ wasm: true });

/** The page script, with the library import left to the separately built mamba-interp.js. */
async function buildPage(): Promise<void> {
  await buildBrowserBundle(join(site, 'mamba-interp.js'));
  await build({
    ...BROWSER_OPTIONS,
    entryPoints: [resolve(import.meta.dirname, 'page.ts')],
    outfile: join(site, 'page.js'),
    plugins: [libraryFromBundle],
  });
  writeFileSync(
    join(site, 'index.html'),
    '<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><title>loading</title><script type="module" src="./page.js"></script>\n',
  );
  mkdirSync(join(site, 'tiny'));
  for (const f of ['config.json', 'model.safetensors']) copyFileSync(join(modelDir('tiny'), f), join(site, 'tiny', f));
  mkdirSync(join(site, 'tokenizer'));
  copyFileSync(join(TOKENIZER_DIR, 'tokenizer.json'), join(site, 'tokenizer', 'tokenizer.json'));
}

Browser.before(async () => {
  if (skip) return;
  const ids = await goldenIds('tiny');
  const model = await loadPretrained(modelDir('tiny'), { backend: nodeCpu });
  const logits = mi.noGrad(() => model.forward(ids));
  nodeLogits = logits.dataSync() as Float32Array;
  nodeShape = logits.shape;
  await buildPage();
  const server = await serveDir(site);
  const browser = (await launchBrowser({ webgpu: true }))!;
  try {
    const opened = await openPage(browser, server.url('index.html'));
    log = opened.log;
    await opened.page.waitForFunction(() => document.title === 'ready', undefined, { timeout: 20_000 });
    // page.evaluate has no timeout of its own: a hung page must fail the suite, not stall it
    let timer: ReturnType<typeof setTimeout> | undefined;
    report = await Promise.race([
      opened.page.evaluate(
        ([url, rows]) => (globalThis as unknown as { miRun(u: string, r: number[][]): Promise<PageReport> }).miRun(url, rows),
        [server.url('tiny/'), ids] as [string, number[][]],
      ),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no report from the page after ${PAGE_TIMEOUT_MS} ms`)), PAGE_TIMEOUT_MS);
      }),
    ]).finally(() => clearTimeout(timer));
    textReport = await opened.page.evaluate(
      ([url, texts, rows]) =>
        (globalThis as unknown as { miText(u: string, t: string[], r: number[][]): Promise<TextReport> }).miText(url, texts, rows),
      [server.url('tokenizer/tokenizer.json'), textCases.map((c) => c.text), textCases.map((c) => c.ids)] as [string, string[], number[][]],
    );
    console.log(
      `browser-kernels: ${report.adapter}; page CPU ${report.cpuDescription}; ${report.cases.length} WebGPU kernel cases in ${report.ms.kernels} ms, ` +
        `${report.cpuCases.length} WebAssembly-vs-scalar CPU cases in ${report.ms.cpuKernels} ms, model ${report.ms.model} ms`,
    );
    if (process.env.BROWSER_KERNELS_TIMES) {
      const perKernel = new Map<string, number>();
      for (const c of report.cases) perKernel.set(c.kernel, (perKernel.get(c.kernel) ?? 0) + c.ms);
      console.log([...perKernel].map(([k, ms]) => `${k} ${ms}`).join(', '));
      console.log(
        [...report.cases]
          .sort((a, b) => b.ms - a.ms)
          .slice(0, 12)
          .map((c) => `${c.name} ${c.ms}`)
          .join(', '),
      );
    }
  } catch (e) {
    failure = e as Error;
  } finally {
    await browser.close();
    await server.close();
  }
});
Browser.after(() => rmSync(site, { recursive: true, force: true }));

/** The page report, or an error saying why there is none. */
function pageReport(): PageReport {
  if (failure) throw new Error(`the page run failed: ${failure.message}\npage errors: ${log?.pageErrors.join('\n') ?? ''}`);
  return report!;
}

Browser(
  "the page's tokenizer (the bundle's) gives Hugging Face tokenizers' ids and decodings, and the same string tokens as Node",
  async () => {
    if (skip) return;
    pageReport();
    const r = textReport!;
    assert.equal(
      r.ids,
      textCases.map((c) => c.ids),
    );
    assert.equal(
      r.decoded,
      textCases.map((c) => c.decoded),
    );
    const tok = await Tokenizer.fromFile(join(TOKENIZER_DIR, 'tokenizer.json'));
    assert.equal(
      r.strTokens,
      textCases.map((c) => toStrTokens(tok, c.text)),
    );
  },
);

Browser('the page got a WebGPU adapter and used the WebGPU backend', () => {
  if (skip) return;
  const r = pageReport();
  assert.match(r.adapter, /^webgpu \(/, `adapter: ${r.adapter}`);
  if (r.gpuError === null) assert.is(r.liveGpuBuffers, 0, 'WebGPU buffers left live after the page disposed everything');
});

for (const kernel of KERNEL_NAMES) {
  Browser(`${kernel}: WebGPU in Chromium matches the CPU on the table's cases`, () => {
    if (skip) return;
    const cases = pageReport().cases.filter((c) => c.kernel === kernel);
    // all but the heavy cases, which Node's WebGPU suite runs (test/engine/wgsl/kernels.test.ts)
    const light = (KERNEL_CASES[kernel] as { heavy?: boolean }[]).filter((c) => !c.heavy);
    assert.is(cases.length, light.length, `cases run for ${kernel}`);
    const failed = cases.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`);
    assert.equal(failed, [], `${failed.length} of ${cases.length} ${kernel} case(s) failed:\n  ${failed.join('\n  ')}`);
  });
}

Browser("the page's CPU backend runs the WebAssembly kernels; the reference of the CPU pass the scalar ones", () => {
  if (skip) return;
  const r = pageReport();
  assert.match(r.cpuDescription, /^cpu \(browser, WebAssembly SIMD, 1 thread\)$/);
  assert.match(
    r.scalarDescription,
    /^cpu \(browser, scalar TypeScript kernels: WebAssembly SIMD switched off for this backend, 1 thread\)$/,
  );
});

for (const kernel of KERNEL_NAMES) {
  const hasWasm = !!CPU_KERNELS[kernel].wasm;
  Browser(
    `${kernel}: in Chromium, ${hasWasm ? "the page's WebAssembly CPU kernel within the table's checks of" : 'bit for bit'} its scalar one`,
    () => {
      if (skip) return;
      const cases = pageReport().cpuCases.filter((c) => c.kernel === kernel);
      assert.is(cases.length, KERNEL_CASES[kernel].length, `cases run for ${kernel}`);
      const failed = cases.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`);
      assert.equal(failed, [], `${failed.length} of ${cases.length} ${kernel} case(s) failed:\n  ${failed.join('\n  ')}`);
      if (!hasWasm) {
        const inexact = cases.filter((c) => c.worst !== 0).map((c) => `${c.name}: worst ${c.worst}`);
        assert.equal(inexact, [], 'no WebAssembly kernel: both sides run the same scalar code');
      }
    },
  );
}

/** The largest |got - Node CPU logits|, and the largest |Node CPU logit|. */
function logitsError(got: number[]): { err: number; scale: number } {
  assert.is(got.length, nodeLogits.length, 'logits size');
  let err = 0,
    scale = 0;
  nodeLogits.forEach((w, i) => {
    err = Math.max(err, Number.isNaN(got[i]) ? Infinity : Math.abs(got[i] - w));
    scale = Math.max(scale, Math.abs(w));
  });
  return { err, scale };
}

Browser("the tiny checkpoint, fetched over 127.0.0.1, gives the Node CPU logits on the page's WebGPU (within 1e-5 of their scale)", () => {
  if (skip) return;
  const r = pageReport();
  assert.is(r.gpuError, null, `the model run on the page's WebGPU threw: ${r.gpuError}`);
  const { err, scale } = logitsError(r.gpuLogits);
  assert.ok(err <= 1e-5 * scale, `WebGPU logits: max error ${err} > 1e-5 * ${scale}`);
});

Browser("the page's WebAssembly CPU backend gives exactly Node's WebAssembly CPU logits (same code, same float32 numbers)", () => {
  if (skip) return;
  const r = pageReport();
  assert.is(r.cpuError, null, `the model run on the page's CPU backend threw: ${r.cpuError}`);
  assert.equal(r.logitsShape, [nodeShape[0], nodeShape[1], nodeShape[2]]);
  // both with the WebAssembly kernels (the page's memory is not shared: one thread)
  assert.match(r.cpuDescription, /^cpu \(browser, WebAssembly SIMD, 1 thread\)$/);
  assert.match(nodeCpu.description, /WebAssembly SIMD/);
  const got = Float32Array.from(r.cpuLogits);
  const at = nodeLogits.findIndex((w, i) => !Object.is(got[i], w));
  assert.is(at, -1, `page CPU logit ${at} is ${got[at]}, Node's ${nodeLogits[at]} (max error ${logitsError(r.cpuLogits).err})`);
});

Browser('the page logged no error and requested nothing outside 127.0.0.1', () => {
  if (skip) return;
  pageReport();
  assertQuietPage(log!);
  for (const path of ['index.html', 'page.js', 'mamba-interp.js', 'tiny/config.json', 'tiny/model.safetensors']) {
    assert.ok(
      log!.requests.some((u) => u.endsWith(`/${path}`)),
      `the page did not request ${path}: ${log!.requests.join(', ')}`,
    );
  }
});

Browser.run();
