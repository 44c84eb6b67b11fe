// A CPU kernel worker thread (see threads.ts): runs one part of a split kernel per message, in
// place on shared memory, with the `part` the kernel registers in CPU_KERNELS, then flags its slot
// READY (or FAILED) and wakes the waiting thread.
import { parentPort, workerData } from 'node:worker_threads';
import type { KernelName } from '../kernels.ts';
import { CPU_KERNELS, type CpuKernel } from './kernels/index.ts';
import type { SplitJob } from './threads.ts';
import { FAILED, READY } from './threads.ts';

const { flags, slot } = workerData as { flags: Int32Array; slot: number };

parentPort!.on('message', (m: SplitJob & { r0: number; r1: number }) => {
  let state = READY;
  try {
    const part = (CPU_KERNELS[m.kernel] as CpuKernel<KernelName> | undefined)?.part;
    if (!part) throw new Error(`kernel '${String(m.kernel)}' has no part to run on a worker thread`);
    part(m.ins, m.outs, m.params as never, m.r0, m.r1, m.extra);
  } catch (e) {
    console.error(`cpu thread ${slot}: ${m.kernel}: ${(e as Error).stack ?? e}`);
    state = FAILED;
  }
  Atomics.store(flags, slot, state);
  Atomics.notify(flags, slot);
});
Atomics.store(flags, slot, READY);
