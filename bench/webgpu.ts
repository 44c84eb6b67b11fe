// WebGPU backend vs CPU backend, in the same run (tinybench medians): copy bandwidth (a plain WGSL
// vec4 copy, the GPU baseline), matmul, the fused selective scan forward and backward, conv1d and
// RMSNorm, a TopK SAE training step (fused kernel vs composed ops) and the hidden-attention map
// (influence kernel vs the autograd Jacobian and the plain loop; bench/lib/fused.ts). GPU time of one call = time from the first submit to onSubmittedWorkDone over `reps`
// back-to-back calls, divided by reps. Every figure is reported with the adapter's description.
// Full shapes on a hardware adapter: copy 1 GiB, matmul 256-4096 (square; NT and TN at 4096; the
// shapes of a mamba-130m layer at 2048 tokens and a decode step's lm_head), scan forward and backward at
// batch 8, length 2048, E 1536, N 16; small ones on a software adapter or with --small. At the end,
// where the adapter has timestamp queries, the slowest kernels of a toy training step and of a
// mamba-130m forward at 1 x 128 (bench/lib/model-work.ts; small shapes likewise).
//   npx tsx bench/webgpu.ts [--quick] [--small] [--write]   (--write replaces the "## WebGPU vs CPU"
//   section of bench/RESULTS.md; not with --small)
import { influenceMs, saeStepMs, type SaeShape, type ScanShape } from './lib/fused.ts';
import { median } from './lib/median.ts';
import { benchFlags, writeResultsSection } from './lib/results.ts';
import { m130Work, toyWork } from './lib/model-work.ts';
import { MIXER_SCAN_FLAGS } from './lib/scan.ts';
import * as mi from '../engine/index.ts';
import type { Backend } from '../engine/backend.ts';
import type { KernelName, KernelParams, ScanParams } from '../engine/kernels.ts';
import { createWebGpuBackend, type WebGpuBackend } from '../engine/wgsl/backend.ts';
import { formatProfile } from '../engine/wgsl/profile.ts';
import { chooseMatmul } from '../engine/wgsl/kernels/matmul.ts';
import { reportErrorsAsOneLine, UsageError } from '../steps/cli-main.ts';

reportErrorsAsOneLine(); // a failure is one line `error: ...`, exit 1 (2 for a bad flag)

const { quick, write, small: smallFlag } = benchFlags('bench/webgpu.ts', ['small']);
if (write && smallFlag) {
  throw new UsageError('bench/webgpu.ts: --write records full shapes only (not --small)');
}
const rng = new mi.Rng('bench/webgpu');
const gpu = await createWebGpuBackend().catch((e: Error) => {
  console.error(`bench/webgpu: no WebGPU adapter (${e.message})`);
  process.exit(0);
});
const cpu = mi.cpuBackend();
// a software adapter (Mesa lavapipe) runs at CPU speed: shrink the shapes so the run stays short
const software = gpu.adapterInfo.software || smallFlag;
console.log(
  `adapter: ${gpu.description}${gpu.adapterInfo.software ? ' (software: reduced shapes)' : smallFlag ? ' (--small: reduced shapes)' : ''}`,
);

interface Row {
  what: string;
  backend: string;
  size: string;
  ms: number;
  rate: string;
  note: string;
}
const rows: Row[] = [];
function report(row: Row): void {
  rows.push(row);
  console.log(
    `${row.what.padEnd(26)} ${row.backend.padEnd(7)} ${row.size.padEnd(22)} ${row.ms.toFixed(3).padStart(10)} ms  ${row.rate.padEnd(18)} ${row.note}`,
  );
}

const randomF32 = (n: number, lo = -1, hi = 1) => Float32Array.from({ length: n }, () => lo + (hi - lo) * rng.uniform());

/** Buffers for one kernel call on a backend; returns the per-call median in ms. */
async function timeKernel<K extends KernelName>(
  b: Backend,
  kernel: K,
  inputs: Float32Array[],
  outSizes: number[],
  params: KernelParams[K],
  reps: number,
  iters: number,
): Promise<number> {
  const ins = inputs.map((a) => {
    const buf = b.alloc('float32', a.length);
    b.write(buf, a);
    return buf;
  });
  const outs = outSizes.map((n) => b.alloc('float32', n));
  const call = async () => {
    for (let r = 0; r < reps; r++) b.run(kernel, ins, outs, params);
    await b.flush();
  };
  await call(); // compile pipelines outside the timing
  const ms = await median(`${kernel} ${b.name}`, call, iters);
  for (const x of [...ins, ...outs]) b.free(x);
  return ms / reps;
}

// ---- copy bandwidth (GPU baseline) -------------------------------------------------------------
async function gpuCopyGBs(g: WebGpuBackend, bytes: number): Promise<number> {
  const device = g.device;
  const usage = GPUBufferUsage.STORAGE;
  const src = device.createBuffer({ size: bytes, usage }),
    dst = device.createBuffer({ size: bytes, usage });
  const n4 = bytes / 16;
  const module = device.createShaderModule({
    code: `
@group(0) @binding(0) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> dst: array<vec4<f32>>;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = id.x + id.y * nwg.x * 256u;
  if (i < ${n4}u) { dst[i] = src[i]; }
}`,
  });
  const pipeline = device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
  const group = device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: [
      { binding: 0, resource: { buffer: src } },
      { binding: 1, resource: { buffer: dst } },
    ],
  });
  const wgs = Math.ceil(n4 / 256);
  const x = Math.min(wgs, 65535),
    y = Math.ceil(wgs / x);
  const reps = software ? 3 : 20;
  const call = async () => {
    const enc = device.createCommandEncoder();
    for (let r = 0; r < reps; r++) {
      const pass = enc.beginComputePass();
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, group);
      pass.dispatchWorkgroups(x, y);
      pass.end();
    }
    device.queue.submit([enc.finish()]);
    await device.queue.onSubmittedWorkDone();
  };
  await call();
  const ms = (await median('copy', call, software ? 3 : 10)) / reps;
  src.destroy();
  dst.destroy();
  return (2 * bytes) / (ms * 1e6);
}

const copyBytes = software ? 64 << 20 : 1 << 30;
const copyGBs = await gpuCopyGBs(gpu, copyBytes);
report({
  what: 'copy (WGSL vec4)',
  backend: 'webgpu',
  size: `${copyBytes >> 20} MiB`,
  ms: (2 * copyBytes) / (copyGBs * 1e6),
  rate: `${copyGBs.toFixed(1)} GB/s`,
  note: 'read + write; the bandwidth baseline',
});

// ---- matmul ------------------------------------------------------------------------------------
// Square sizes on both backends; on WebGPU also the other transposes at the largest size, the
// shapes of a mamba-130m layer at batch x length 2048 (smaller on a software adapter), and a decode
// step's lm_head (M = 1: the skinny kernel, so GB/s of the weight read as well). Each WebGPU row
// names the kernel the shape rule picked (engine/wgsl/kernels/matmul.ts) and the adapter.
const adapterName = gpu.adapterInfo.description || gpu.description;
function matmulKernelName(p: KernelParams['matmul']): string {
  const c = chooseMatmul(p);
  return c.kind === 'matvec' ? 'skinny kernel' : `${c.tm}x${c.tn} tiles${c.split > 1 ? `, split-K ${c.split}` : ''}`;
}
async function matmulRow(be: Backend, what: string, p: KernelParams['matmul'], reps: number, iters: number, note = ''): Promise<void> {
  const { M, N, K, transA, transB } = p;
  const ms = await timeKernel(be, 'matmul', [randomF32(M * K), randomF32(K * N)], [M * N], p, reps, iters);
  const gflops = (2 * M * N * K) / (ms * 1e6);
  const skinny = Math.min(M, N) <= 8;
  const gbs = skinny ? (4 * (M * K + K * N + M * N)) / (ms * 1e6) : 0;
  report({
    what,
    backend: be.name,
    size: `${M}x${N}x${K} ${transA ? 'T' : 'N'}${transB ? 'T' : 'N'}`,
    ms,
    rate: `${gflops.toFixed(1)} GFLOP/s`,
    note: [be === gpu ? `${matmulKernelName(p)}; ${adapterName}` : '', skinny ? `${gbs.toFixed(1)} GB/s` : '', note]
      .filter(Boolean)
      .join('; '),
  });
}
const mm = (M: number, N: number, K: number, transA = false, transB = false): KernelParams['matmul'] => ({
  batch: 1,
  M,
  N,
  K,
  transA,
  transB,
  aBatchStride: 0,
  bBatchStride: 0,
});
const gpuSizes = software ? (quick ? [256] : [256, 512]) : quick ? [1024, 4096] : [256, 512, 1024, 2048, 4096];
const cpuSizes = quick ? [256] : [256, 512, 1024];
for (const n of [...new Set([...gpuSizes, ...cpuSizes])].sort((a, b) => a - b)) {
  for (const [be, sizes] of [
    [gpu, gpuSizes],
    [cpu, cpuSizes],
  ] as const) {
    if (!sizes.includes(n)) continue;
    const heavy = be === cpu || software;
    await matmulRow(
      be,
      'matmul f32',
      mm(n, n, n),
      heavy ? 1 : 10,
      heavy ? (n >= 1024 ? 1 : 3) : 10,
      be === cpu && n === 1024 ? 'CPU measured up to 1024 only' : '',
    );
  }
}
{
  const n = gpuSizes[gpuSizes.length - 1];
  const [reps, iters] = software ? [1, 2] : [10, 10];
  for (const [tA, tB] of [
    [false, true],
    [true, false],
  ])
    await matmulRow(gpu, 'matmul f32', mm(n, n, n, tA, tB), reps, iters);
  // mamba-130m at batch x length 2048 (d_model 768, d_inner 1536, dt_rank 48, N 16): divided by 8 on a software adapter
  const d = software ? 8 : 1;
  const T = 2048 / d,
    D = 768 / d,
    E = 1536 / d;
  const shapes: [string, KernelParams['matmul'], string][] = [
    ['matmul in_proj x W^T', mm(T, 2 * E, D, false, true), 'forward'],
    ['matmul out_proj x W^T', mm(T, D, E, false, true), 'forward'],
    ['matmul x_proj x W^T', mm(T, 80, E, false, true), 'forward, N = dt_rank + 2 N'],
    ['matmul in_proj dW', mm(2 * E, D, T, true, false), 'weight gradient: dY^T X'],
    ['matmul x_proj dW', mm(80, E, T, true, false), 'weight gradient: dY^T X'],
    ['matmul lm_head decode', mm(1, software ? 4096 : 50280, D, false, true), 'one token: x W^T'],
  ];
  for (const [what, p, note] of shapes) await matmulRow(gpu, what, p, reps, iters, note);
}

// ---- selective scan ---------------------------------------------------------------------------
const full = { batch: 8, T: 2048, E: 1536, N: 16 };
const small = { batch: 1, T: 256, E: 128, N: 16 };
const gpuScan = software ? small : full;
for (const [be, shape] of [
  [gpu, gpuScan],
  [cpu, small],
] as const) {
  const { batch, T, E, N } = shape;
  const p: ScanParams = { batch, T, E, N, ...MIXER_SCAN_FLAGS };
  const bTE = batch * T * E,
    bTN = batch * T * N;
  const ins = [
    randomF32(bTE),
    randomF32(bTE, -3, 0),
    randomF32(E * N, -2, -0.1),
    randomF32(bTN),
    randomF32(bTN),
    randomF32(E),
    randomF32(bTE),
    randomF32(E, -1, 0),
  ];
  const heavy = be === cpu || software;
  const fwdMs = await timeKernel(be, 'scan', ins, [bTE, batch * E * N], p, heavy ? 1 : 5, heavy ? 2 : 5);
  const fwdBytes = 4 * (4 * bTE + 2 * bTN + E * N + 2 * E + batch * E * N);
  const bwdMs = await timeKernel(
    be,
    'scan_bwd',
    [...ins, randomF32(bTE)],
    ins.map((a) => a.length),
    { ...p, hasDhT: false, hasDhs: false },
    heavy ? 1 : 3,
    heavy ? 2 : 3,
  );
  const bwdBytes = 4 * (7 * bTE + 4 * bTN + 2 * E * N + 4 * E);
  const size = `b${batch} T${T} E${E} N${N}`;
  for (const [what, ms, bytes] of [
    ['selective scan fwd', fwdMs, fwdBytes],
    ['selective scan bwd', bwdMs, bwdBytes],
  ] as const) {
    const gbs = bytes / (ms * 1e6);
    report({
      what,
      backend: be.name,
      size,
      ms,
      rate: `${gbs.toFixed(3)} GB/s`,
      note: be === gpu ? `${((gbs / copyGBs) * 100).toFixed(1)}% of copy${software ? ' (software adapter: CPU speed)' : ''}` : '',
    });
  }
}

// ---- conv1d and RMSNorm -----------------------------------------------------------------------
for (const be of [gpu, cpu]) {
  const heavy = be === cpu || software;
  const [batch, T, C, K] = heavy ? [1, 256, 512, 4] : [8, 2048, 3072, 4];
  const n = batch * T * C;
  const convMs = await timeKernel(
    be,
    'conv1d',
    [randomF32(n), randomF32(C * K), randomF32(C)],
    [n],
    { batch, T, C, K, hasBias: true },
    heavy ? 1 : 10,
    heavy ? 3 : 10,
  );
  report({
    what: 'conv1d causal (K=4, bias)',
    backend: be.name,
    size: `b${batch} T${T} C${C}`,
    ms: convMs,
    rate: `${((2 * n * 4) / (convMs * 1e6)).toFixed(2)} GB/s`,
    note: 'x read + y written',
  });
  const [rows, cols] = heavy ? [256, 768] : [16384, 768];
  const rmsMs = await timeKernel(
    be,
    'rmsnorm',
    [randomF32(rows * cols), randomF32(cols)],
    [rows * cols, rows],
    { rows, cols, eps: 1e-5 },
    heavy ? 1 : 10,
    heavy ? 3 : 10,
  );
  report({
    what: 'rmsnorm',
    backend: be.name,
    size: `${rows}x${cols}`,
    ms: rmsMs,
    rate: `${((2 * rows * cols * 4) / (rmsMs * 1e6)).toFixed(2)} GB/s`,
    note: 'x read + y written',
  });
}

// ---- TopK SAE training step: the fused kernel vs the same maths composed of matmul, topk, scatter ----
const SAE_TARGET: SaeShape = { rows: 4096, d: 768, latents: 16384, k: 32 };
const SAE_SMALL: SaeShape = { rows: 256, d: 64, latents: 512, k: 8 };
const SAE_MID: SaeShape = { rows: 1024, d: 128, latents: 2048, k: 16 };
const saeShapes: [Backend, SaeShape[]][] = [
  [gpu, software ? (quick ? [SAE_SMALL] : [SAE_SMALL, SAE_MID]) : [SAE_SMALL, SAE_TARGET]],
  [cpu, [SAE_SMALL]],
];
for (const [be, shapes] of saeShapes) {
  for (const s of shapes) {
    const heavy = be === cpu || software || s === SAE_TARGET;
    const iters = heavy ? (quick ? 2 : 3) : 10;
    const fused = await saeStepMs(be, s, 'fused', iters);
    const composed = await saeStepMs(be, s, 'composed', iters);
    const encodeFlops = 2 * s.rows * s.d * s.latents;
    const size = `${s.rows}x${s.d} L${s.latents} k${s.k}`;
    report({
      what: 'SAE step topk (fused)',
      backend: be.name,
      size,
      ms: fused,
      rate: `${(encodeFlops / (fused * 1e6)).toFixed(1)} GFLOP/s enc`,
      note: `${(composed / fused).toFixed(2)}x the composed step`,
    });
    report({
      what: 'SAE step topk (composed)',
      backend: be.name,
      size,
      ms: composed,
      rate: `${(encodeFlops / (composed * 1e6)).toFixed(1)} GFLOP/s enc`,
      note: 'matmul + topk + scatter-add, dense decode',
    });
  }
}

// ---- hidden attention: the influence kernel vs the autograd Jacobian of the scan and the JS loop ----
const INF_SMALL: ScanShape = { T: 32, E: 16, N: 16 };
const INF_MODEL: ScanShape = { T: 64, E: 128, N: 16 };
const INF_BIG: ScanShape = { T: 1024, E: 1536, N: 16 };
for (const be of [gpu, cpu]) {
  const heavy = be === cpu || software;
  const iters = heavy ? (quick ? 2 : 3) : 10;
  const shapes = heavy ? [INF_SMALL, INF_MODEL] : [INF_SMALL, INF_MODEL, INF_BIG];
  for (const s of shapes) {
    const size = `T${s.T} E${s.E} N${s.N}`;
    const kernel = await influenceMs(be, s, 'kernel', iters);
    report({
      what: 'hidden attention (kernel)',
      backend: be.name,
      size,
      ms: kernel,
      rate: `${((s.T * s.T * s.E) / (kernel * 1e3)).toFixed(1)} M alpha/s`,
      note: 'mean |alpha| map, read back',
    });
    if (s === INF_SMALL) {
      const jac = await influenceMs(be, s, 'jacobian', heavy ? 1 : 3);
      report({
        what: 'hidden attention (jacobian)',
        backend: be.name,
        size,
        ms: jac,
        rate: '',
        note: `autograd, T*E backward passes; ${(jac / kernel).toFixed(0)}x the kernel`,
      });
    }
    if (s === INF_MODEL && be === cpu) {
      const loop = await influenceMs(be, s, 'loop', iters);
      report({
        what: 'hidden attention (JS loop)',
        backend: be.name,
        size,
        ms: loop,
        rate: '',
        note: `the previous step-8 path; ${(loop / kernel).toFixed(1)}x the kernel`,
      });
    }
  }
}

// ---- the slowest kernels of a training step and of a 130m forward -----------------------------
if (gpu.canProfile) {
  const profile = (what: string, p: Parameters<typeof formatProfile>[0]) =>
    console.log(`\nslowest kernels, ${what}:\n${formatProfile(p, 12)}`);
  await toyWork(gpu, ['a'], 1, { small: software, profile });
  await m130Work(['c'], 1, { backend: gpu, small: software, shapes: [software ? [1, 16] : [1, 128]], profile });
} else console.log(`\nno kernel profile: ${gpu.description} has no timestamp-query`);

if (write) {
  const table = [
    '| benchmark | backend | size | median ms | rate | note |',
    '|---|---|---|---:|---|---|',
    ...rows.map((r) => `| ${r.what} | ${r.backend} | ${r.size} | ${r.ms.toFixed(3)} | ${r.rate} | ${r.note} |`),
  ].join('\n');
  const section = `## WebGPU vs CPU

Written by \`npx tsx bench/webgpu.ts --write\`. Medians of tinybench samples, CPU and WebGPU in the same run.
GPU time per call = submit to \`onSubmittedWorkDone\` over several back-to-back calls, divided by their number.

- WebGPU adapter (every webgpu row): ${gpu.description}${software ? ' — a software rasteriser on the CPU, so shapes are reduced' : ''}
- CPU backend: ${cpu.description}
- Selective scan: D, z gate, delta bias and softplus on; GB/s counts the compulsory bytes,
  forward 4 (4 bTE + 2 bTN + EN + 2E + bEN), backward 4 (7 bTE + 4 bTN + 2 EN + 4E); "% of copy" is
  against this run's WGSL copy (targets on a hardware GPU: forward >= 50%, backward >= 25%). The
  kernels move 16 B per (t, e) forward and about 48 B backward at N 16 (engine/wgsl/kernels/scan.ts).
  Target shape b8 T2048 E1536 N16 on a hardware GPU; b1 T256 E128 N16 on the CPU and on a software
  adapter. Matmul on the CPU only up to 1024; each WebGPU matmul row names the kernel the shape
  rule chose (engine/wgsl/kernels/matmul.ts).
- SAE step: one TopK training step (forward, per-row loss, backward to all four parameters) by the
  fused kernel vs the same maths composed of matmul, topk and scatter-add (dense decode and dense
  gradients, as a plain PyTorch TopK SAE); target 4096 rows x d 768, 16k latents, k 32 on a
  hardware GPU only. "GFLOP/s enc" counts the encoder matmul alone (2 rows d L).
- Hidden attention: the mean |alpha| map of one sequence read back to the host, by the influence
  kernel, by the autograd Jacobian of the scan (T E backward passes), and (CPU) by the plain-JS
  loop step 8 used before.
- Date: ${new Date().toISOString().slice(0, 10)}

${table}
`;
  writeResultsSection('## WebGPU vs CPU', section);
}
process.exit(0);
