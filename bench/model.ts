// Model benchmarks (tinybench, medians): a toy training step and forward (vocab 64, hidden 64,
// 2 layers, N 16, expand 2, batch 32, length 256, AdamW) on the CPU and, when an adapter exists,
// on WebGPU in the same run; the forward and the recurrent decode step at mamba-130m shapes
// (hidden 768, 24 layers, vocab 50280, random weights) on the CPU. Compared in the written
// section with the PyTorch CPU figures of ../shared/notes/peers.md.
//   npx tsx bench/model.ts [--quick] [--write]   (--write replaces the "## Model" section of bench/RESULTS.md)
import { median } from './lib/median.ts';
import { benchFlags, writeResultsSection } from './lib/results.ts';
import { cpus, loadavg } from 'node:os';
import * as mi from '../engine/index.ts';
import { threadsReady } from '../engine/cpu/threads.ts';
import type { Backend } from '../engine/index.ts';
import { makeConfig } from '../mamba/config.ts';
import { initMamba, type MambaLM } from '../mamba/model.ts';
import { disposeCache } from '../mamba/recurrent.ts';
import { nextTokenLoss } from '../mamba/train.ts';

const { quick, write } = benchFlags('bench/model.ts');

interface Row {
  what: string;
  where: string;
  ms: number;
  rate: string;
  pytorch: string;
}
const rows: Row[] = [];
function report(row: Row): void {
  rows.push(row);
  console.log(
    `${row.what.padEnd(44)} ${row.where.padEnd(28)} ${row.ms.toFixed(1).padStart(9)} ms  ${row.rate.padEnd(22)} PyTorch CPU: ${row.pytorch}`,
  );
}

const toy = makeConfig({ vocab_size: 64, hidden_size: 64, num_hidden_layers: 2, state_size: 16, expand: 2 });
const [BATCH, LEN] = [32, 256];

function toyBatch(rng: mi.Rng): number[][] {
  return Array.from({ length: BATCH }, () => Array.from({ length: LEN }, () => rng.int(0, toy.vocab_size)));
}

async function benchToy(backend: Backend, where: string): Promise<void> {
  const rng = new mi.Rng('bench/model/toy');
  const model = initMamba(toy, rng.fork('init'), { backend });
  const params = [...model.params.values()];
  const opt = new mi.AdamW(params, { lr: 1e-3 });
  const rows = toyBatch(rng.fork('data'));
  const ids = mi.keep(model.ids(rows));
  const tokens = BATCH * LEN;
  try {
    for (const p of params) p.requiresGrad = true;
    const tStep = await median(
      `train step ${where}`,
      () =>
        mi.tidyAsync(async () => {
          const loss = nextTokenLoss(model, ids);
          const grads = mi.backwardFrom(loss);
          const gs = params.map((p) => grads.get(p) ?? null);
          await mi.clipGradNorm(gs, 1);
          opt.step(gs);
          await loss.item();
        }),
      quick ? 2 : 4,
    );
    for (const p of params) p.requiresGrad = false;
    report({
      what: 'toy training step (fwd+bwd+clip+AdamW)',
      where,
      ms: tStep,
      rate: `${((tokens / tStep) * 1000).toFixed(0)} tokens/s`,
      pytorch: '1.6-1.8 s (~5k tokens/s)',
    });
    const tFwd = await median(
      `forward ${where}`,
      () =>
        mi.tidyAsync(async () => {
          await mi.noGrad(() => model.forward(ids)).data();
        }),
      quick ? 2 : 5,
    );
    report({
      what: 'toy forward',
      where,
      ms: tFwd,
      rate: `${((tokens / tFwd) * 1000).toFixed(0)} tokens/s`,
      pytorch: '~380 ms (~21k tokens/s)',
    });
  } finally {
    opt.dispose();
    ids.dispose();
    model.dispose();
  }
}

async function bench130m(): Promise<void> {
  const config = makeConfig({ vocab_size: 50280, hidden_size: 768, num_hidden_layers: 24, state_size: 16, expand: 2 });
  const t0 = performance.now();
  const model: MambaLM = initMamba(config, new mi.Rng('bench/model/130m'), { backend: mi.cpuBackend() });
  console.log(
    `mamba-130m shapes: ${[...model.params.values()].reduce((n, t) => n + t.size, 0)} parameters, random init in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
  const rng = new mi.Rng('bench/model/130m-data');
  const prompt = [Array.from({ length: 128 }, () => rng.int(0, config.vocab_size))];
  try {
    const tFwd = await median(
      '130m forward',
      () => {
        mi.tidy(() => {
          mi.noGrad(() => model.forward(prompt)).dataSync();
        });
      },
      quick ? 1 : 3,
    );
    report({
      what: 'mamba-130m shapes forward, batch 1 x 128',
      where: 'cpu',
      ms: tFwd,
      rate: `${((128 / tFwd) * 1000).toFixed(0)} tokens/s`,
      pytorch: '~740 ms (~172 tokens/s)',
    });
    const { logits, cache } = model.prefill([prompt[0].slice(0, 8)]);
    logits.dispose();
    let tok = 0;
    const tStep = await median(
      '130m decode step',
      () => {
        const l = model.step(cache, [tok]);
        tok = (tok + 1) % config.vocab_size;
        l.dataSync();
        l.dispose();
      },
      quick ? 3 : 10,
    );
    disposeCache(cache);
    report({
      what: 'mamba-130m shapes recurrent decode step',
      where: 'cpu',
      ms: tStep,
      rate: `${(1000 / tStep).toFixed(1)} tokens/s`,
      pytorch: '~51 ms/token (92 ms with 1-row matmuls)',
    });
  } finally {
    model.dispose();
  }
}

function markdown(gpuLine: string): string {
  const lines = [
    '## Model',
    '',
    'Written by `npx tsx bench/model.ts --write` (part of `npm run bench`). Medians of tinybench samples',
    `(few iterations: each sample is long). Machine: ${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, Node ${process.versions.node},`,
    `CPU kernels on ${threadsReady()} thread(s) (engine/cpu/threads.ts; MI_CPU_THREADS), load average ${loadavg()[0].toFixed(1)} at the end,`,
    'shared with other jobs while measured, so figures are noisy. PyTorch figures: ../shared/notes/peers.md',
    '(PyTorch 1.13 CPU, OpenBLAS, 2 threads, HF slow path, same shapes).',
    gpuLine,
    '',
    '| work | backend | median | rate | PyTorch CPU |',
    '| --- | --- | ---: | --- | --- |',
    ...rows.map((r) => `| ${r.what} | ${r.where} | ${r.ms.toFixed(1)} ms | ${r.rate} | ${r.pytorch} |`),
    '',
    'Targets (peers.md): toy training at least 2x PyTorch tokens/s; toy forward and 130m decode at least level.',
    '',
  ];
  return lines.join('\n');
}

async function main(): Promise<void> {
  mi.setBackend(mi.cpuBackend());
  await benchToy(mi.cpuBackend(), 'cpu');
  let gpuLine = 'WebGPU: no adapter on this machine.';
  const gpu = await mi
    .initBackend('webgpu', () => undefined)
    .catch((e: Error) => {
      gpuLine = `WebGPU: no adapter (${e.message}).`;
      return null;
    });
  mi.setBackend(mi.cpuBackend());
  if (gpu) {
    const where = `webgpu (${gpu.description})`.slice(0, 60);
    try {
      await benchToy(gpu, where);
      gpuLine = `WebGPU adapter: ${gpu.description}.`;
    } catch (e) {
      gpuLine = `WebGPU adapter ${gpu.description}: the toy model did not run (${(e as Error).message}).`;
      console.log(gpuLine);
    }
  }
  await bench130m();
  if (write) writeResultsSection('## Model', markdown(gpuLine));
}

await main();
