// Model benchmarks (medians of wall time): the work of bench/lib/model-work.ts, which is what
// ../shared/peers/torch_mamba.py times: a toy training step and forward (vocab 64, hidden 64,
// 2 layers, N 16, expand 2, batch 32, length 256, AdamW) on the CPU and, when an adapter exists,
// on WebGPU in the same run; the forward and the recurrent decode step at mamba-130m shapes
// (hidden 768, 24 layers, vocab 50280, random weights) on the CPU. bench/peers.ts runs the same
// work beside PyTorch, interleaved, for ratios.
//   npx tsx bench/model.ts [--quick] [--write]   (--write replaces the "## Model" section of bench/RESULTS.md)
//   npx tsx bench/model.ts --webgpu [--small]    WebGPU only: the toy work, the 130m forward at
//     1 x 128, 1 x 2048 and 8 x 2048 (../shared/peers/hf_gpu_bench.py's shapes) and the decode step,
//     then the slowest kernels of a toy training step and of each 130m forward (timestamp queries);
//     --small shrinks every shape (a software adapter, tests). Neither writes RESULTS.md.
import { benchFlags, writeResultsSection } from './lib/results.ts';
import { cpus, loadavg } from 'node:os';
import * as mi from '../engine/index.ts';
import { threadsReady } from '../engine/cpu/threads.ts';
import { formatProfile, type KernelProfile } from '../engine/wgsl/profile.ts';
import { m130Work, toyWork, type WorkResult } from './lib/model-work.ts';
import { reportErrorsAsOneLine, UsageError } from '../steps/cli-main.ts';

reportErrorsAsOneLine(); // a failure is one line `error: ...`, exit 1 (2 for a bad flag)

const { quick, write, small: smallFlag, webgpu } = benchFlags('bench/model.ts', ['small', 'webgpu']);
if (write && (smallFlag || webgpu)) {
  throw new UsageError('bench/model.ts: --write records the default run only (not --small or --webgpu)');
}

interface Row {
  what: string;
  where: string;
  ms: number;
  rate: string;
}
const rows: Row[] = [];
function report(w: WorkResult, where: string): void {
  const rate = w.tokens === 1 ? `${(1000 / w.medianMs).toFixed(1)} tokens/s` : `${((w.tokens / w.medianMs) * 1000).toFixed(0)} tokens/s`;
  rows.push({ what: w.what, where, ms: w.medianMs, rate });
  console.log(`${w.what.padEnd(72)} ${where.padEnd(28)} ${w.medianMs.toFixed(1).padStart(9)} ms  ${rate}`);
}

function markdown(gpuLine: string): string {
  const lines = [
    '## Model',
    '',
    'Written by `npx tsx bench/model.ts --write` (part of `npm run bench`): the work of bench/lib/model-work.ts',
    `(the same as ../shared/peers/torch_mamba.py's a-d), medians of wall time. Machine: ${cpus().length} x ${cpus()[0]?.model ?? 'cpu'},`,
    `Node ${process.versions.node}, CPU kernels on ${threadsReady()} thread(s) (MI_CPU_THREADS), load average ${loadavg()[0].toFixed(1)} at the end.`,
    'Against PyTorch, measured in the same job: the section "Against PyTorch (CPU)" (bench/peers.ts).',
    gpuLine,
    '',
    '| work | backend | median | rate |',
    '| --- | --- | ---: | --- |',
    ...rows.map((r) => `| ${r.what} | ${r.where} | ${r.ms.toFixed(1)} ms | ${r.rate} |`),
    '',
  ];
  return lines.join('\n');
}

/** --webgpu: everything on the WebGPU adapter (an error when there is none), with kernel profiles. */
async function webgpuOnly(): Promise<void> {
  const gpu = (await mi.initBackend('webgpu')) as mi.Backend & { adapterInfo: { software: boolean } };
  mi.setBackend(mi.cpuBackend());
  // a software adapter runs at CPU speed and has small binding limits (128 MiB on lavapipe)
  const small = smallFlag || gpu.adapterInfo.software;
  const where = gpu.description.slice(0, 60);
  // printed as they come, so that a run stopped by a time limit keeps what it measured
  let profiled = 0;
  const profile = (what: string, p: KernelProfile) => {
    profiled++;
    console.log(`\nslowest kernels, ${what}:\n${formatProfile(p, 12)}\n`);
  };
  console.log(`adapter: ${gpu.description}${small ? (smallFlag ? ' (--small shapes)' : ' (software: small shapes)') : ''}`);
  const runs = quick || small ? 2 : 4;
  const onResult = (w: WorkResult) => report(w, where);
  await toyWork(gpu, ['a', 'b'], runs, { small, profile, onResult });
  await m130Work(['c', 'd'], quick || small ? 1 : 3, { backend: gpu, small, profile, onResult });
  if (!profiled) console.log(`no kernel profile: ${gpu.description} has no timestamp-query`);
}

async function main(): Promise<void> {
  if (webgpu) return webgpuOnly();
  const cpu = mi.cpuBackend();
  mi.setBackend(cpu);
  for (const w of await toyWork(cpu, ['a', 'b'], quick ? 2 : 4, { small: smallFlag })) report(w, 'cpu');
  let gpuLine = 'WebGPU: no adapter on this machine.';
  const gpu = await mi
    .initBackend('webgpu', () => undefined)
    .catch((e: Error) => {
      gpuLine = `WebGPU: no adapter (${e.message}).`;
      return null;
    });
  mi.setBackend(cpu);
  if (gpu) {
    const where = gpu.description.slice(0, 60);
    try {
      for (const w of await toyWork(gpu, ['a', 'b'], quick ? 2 : 4, { small: smallFlag })) report(w, where);
      gpuLine = `WebGPU adapter: ${gpu.description}.`;
    } catch (e) {
      gpuLine = `WebGPU adapter ${gpu.description}: the toy model did not run (${(e as Error).message}).`;
      console.log(gpuLine);
    }
  }
  for (const w of await m130Work(['c', 'd'], quick ? 1 : 3, { small: smallFlag })) report(w, 'cpu');
  if (write) writeResultsSection('## Model', markdown(gpuLine));
}

await main();
