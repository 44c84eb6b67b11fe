// The page script of test/browser/kernels.test.ts. It imports the library from the real browser
// bundle (the test's esbuild build maps browser.ts to ./mamba-interp.js, so this page loads
// mamba-interp.js as built) and exposes one function the test calls with page.evaluate: the tiny
// checkpoint fetched from the same origin and run on the page's CPU and WebGPU backends, then the
// kernel parity cases of test/engine/kernel-cases.ts twice: on the page's CPU backend with its
// WebAssembly kernels against a CPU backend with them off (the scalar TypeScript kernels, as
// test/engine/wasm/kernels.test.ts does in Node), and on the page's WebGPU against its CPU backend.
import * as MI from '../../browser.ts';
import { runKernelCases, type CaseResult } from '../engine/kernel-cases.ts';

export interface PageReport {
  /** the WebGPU backend's description of its adapter */
  adapter: string;
  /** the page's CPU backend's description (which kernels it runs) */
  cpuDescription: string;
  /** the description of the CPU backend with the WebAssembly kernels off (the reference of cpuCases) */
  scalarDescription: string;
  /** the parity table on the page's WebGPU (candidate) against its CPU backend */
  cases: CaseResult[];
  /** the parity table on the page's CPU backend, WebAssembly kernels (candidate) against scalar ones */
  cpuCases: CaseResult[];
  logitsShape: number[];
  /** logits of the checkpoint on the page's WebGPU and on the page's CPU backend */
  gpuLogits: number[];
  cpuLogits: number[];
  /** what each model run threw, if it did (the kernel results are reported all the same) */
  gpuError: string | null;
  cpuError: string | null;
  /** WebGPU buffers still live after everything was disposed */
  liveGpuBuffers: number;
  ms: { kernels: number; cpuKernels: number; model: number };
}

async function logitsOn(backend: MI.Backend, modelUrl: string, ids: number[][]): Promise<{ shape: number[]; data: number[] }> {
  const model = await MI.fetchPretrained(modelUrl, { backend });
  try {
    // tidy: the forward pass's intermediates are freed, only the logits survive
    const logits = MI.tidy(() => MI.noGrad(() => model.forward(ids)));
    const data = Array.from(await logits.data());
    const shape = [...logits.shape];
    logits.dispose();
    return { shape, data };
  } finally {
    for (const t of model.params.values()) t.dispose();
  }
}

async function miRun(modelUrl: string, ids: number[][]): Promise<PageReport> {
  // the CPU backend as a page gets it: initBackend('cpu') compiles the WebAssembly kernels
  // (asynchronously, as the main thread requires), so it runs the same kernels as Node
  const cpu = await MI.initBackend('cpu');
  // The model first, on a fresh device; the kernel cases then start on the same device (its
  // compiled pipelines are reused) and get a new device after each case that fails on the device
  // (a failed WebGPU backend throws its first error from every later call; createWebGpuBackend
  // would hand back that same backend).
  const newGpu = async () => new MI.WebGpuBackend(await MI.acquireDevice());
  const gpu = await newGpu();
  let t0 = performance.now();
  // each run reports its own failure, so that one backend's error does not hide the other's result
  const attempt = async (backend: MI.Backend) => {
    try {
      const out = await logitsOn(backend, modelUrl, ids);
      if (backend === gpu) await gpu.flush();
      return { ...out, error: null };
    } catch (e) {
      return { shape: [], data: [], error: (e as Error).message };
    }
  };
  const onCpu = await attempt(cpu);
  const onGpu = await attempt(gpu);
  const liveGpuBuffers = gpu.liveBuffers();
  const model = performance.now() - t0;
  // the CPU pass: the same heap, the WebAssembly kernels against the scalar ones (fast: no WGSL)
  t0 = performance.now();
  const scalar = new MI.CpuBackend({ wasm: false });
  const cpuCases = await runKernelCases(cpu, scalar, { labels: ['wasm', 'scalar'] });
  const cpuKernels = performance.now() - t0;
  t0 = performance.now();
  let first: MI.Backend | null = onGpu.error ? null : gpu;
  const cases = await runKernelCases(
    async () => {
      const b = first ?? (await newGpu());
      first = null;
      return b;
    },
    cpu,
    // the heavy cases (large grids and outputs) take minutes on SwiftShader; Node's WebGPU suite runs them
    { labels: ['gpu', 'cpu'], skipHeavy: true },
  );
  const kernels = performance.now() - t0;
  return {
    adapter: gpu.description,
    cpuDescription: cpu.description,
    scalarDescription: scalar.description,
    cases,
    cpuCases,
    logitsShape: onCpu.shape,
    gpuLogits: onGpu.data,
    cpuLogits: onCpu.data,
    gpuError: onGpu.error,
    cpuError: onCpu.error,
    liveGpuBuffers,
    ms: { kernels: Math.round(kernels), cpuKernels: Math.round(cpuKernels), model: Math.round(model) },
  };
}

/** The fixture tokenizer fetched by the page: each text's ids, string tokens and the decoding of its ids. */
export interface TextReport {
  ids: number[][];
  strTokens: string[][];
  decoded: string[];
}

async function miText(tokenizerUrl: string, texts: string[], ids: number[][]): Promise<TextReport> {
  const tok = (await MI.Tokenizer.fromUrl(tokenizerUrl))!;
  return {
    ids: texts.map((t) => MI.text.toTokens(tok, t)[0]),
    strTokens: texts.map((t) => MI.text.toStrTokens(tok, t)),
    decoded: ids.map((r) => MI.text.idsToString(tok, r)),
  };
}

(globalThis as unknown as { miRun: typeof miRun; miText: typeof miText }).miRun = miRun;
(globalThis as unknown as { miText: typeof miText }).miText = miText;
document.title = 'ready';
