// A CPU kernel worker thread (see threads.ts): runs one part of a split kernel per message, in
// place on shared memory, then flags its slot READY (or FAILED) and wakes the waiting thread.
import { parentPort, workerData } from 'node:worker_threads';
import { matmulRows } from './kernels/matmul.ts';
import { matmulSmallM } from './kernels/matmul-small.ts';
import { scanBatches, scanBwdBatches } from './kernels/scan.ts';
import type { SplitJob } from './threads.ts';
import { FAILED, READY } from './threads.ts';

const { flags, slot } = workerData as { flags: Int32Array; slot: number };

parentPort!.on('message', (m: SplitJob & { r0: number; r1: number }) => {
  let state = READY;
  try {
    const p = m.params as never;
    if (m.task === 'matmulRows') matmulRows(m.ins, m.outs, p, m.r0, m.r1);
    else if (m.task === 'matmulSmallCols') matmulSmallM(m.ins, m.outs, p, m.r0, m.r1);
    else if (m.task === 'scanBatches') scanBatches(m.ins, m.outs, p, m.r0, m.r1);
    else if (m.task === 'scanBwdBatches') scanBwdBatches(m.ins, m.outs, p, m.r0, m.r1, m.extra!);
    else throw new Error(`unknown task ${String(m.task)}`);
  } catch (e) {
    console.error(`cpu thread ${slot}: ${m.task}: ${(e as Error).stack ?? e}`);
    state = FAILED;
  }
  Atomics.store(flags, slot, state);
  Atomics.notify(flags, slot);
});
Atomics.store(flags, slot, READY);
