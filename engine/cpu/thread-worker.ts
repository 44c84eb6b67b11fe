// A CPU kernel worker thread (see threads.ts). It attaches to the calling thread's heap memory
// (workerData), instantiates the WebAssembly kernel modules on it (compiling them synchronously)
// and then reports READY and waits in Atomics.wait on its flag, not in its event loop. When the
// calling thread flags it BUSY, it reads its job from its port (receiveMessageOnPort): one part of
// a split kernel, or for a WebAssembly kernel the parts of one, taken in turn with the other
// threads from a shared counter. Views of the heap are made from the job's buffer references (on
// memory.buffer as it is now: the memory may have grown since the last job), the part runs in
// place (a scalar kernel's `part`, or a WebAssembly kernel's `split.part`, from CPU_KERNELS), and
// the worker flags its slot READY (or FAILED) and wakes the waiting thread.
import { type MessagePort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import type { KernelName } from '../kernels.ts';
import { instantiateKernelModules } from '../wasm/kernel.ts';
import { WasmHeap } from '../wasm/memory.ts';
import { CPU_KERNELS, type CpuKernel } from './kernels/index.ts';
import type { BufferRef, PartJob } from './threads.ts';
import { BUSY, claimParts, FAILED, READY } from './threads.ts';

const { flags, claims, slot, memory, jobs } = workerData as {
  flags: Int32Array;
  claims: Int32Array;
  slot: number;
  memory: WebAssembly.Memory;
  jobs: MessagePort;
};
const heap = new WasmHeap({ memory });
const view = (r: BufferRef) => heap.viewAt(r.dtype, r.offset, r.length);

function runJob(m: PartJob): void {
  let state = READY;
  try {
    const entry = CPU_KERNELS[m.kernel] as CpuKernel<KernelName> | undefined;
    const ins = m.ins.map(view),
      outs = m.outs.map(view);
    if (m.kind === 'wasm') {
      const split = entry?.wasm?.split;
      if (!split) throw new Error(`kernel '${String(m.kernel)}' has no WebAssembly split to run on a worker thread`);
      const part = (r0: number, r1: number) => split.part(heap, ins, outs, m.params as never, r0, r1, m.scratch, m.shared);
      if (m.parts) claimParts(claims, m.parts, part);
      else part(m.r0, m.r1);
    } else {
      if (!entry?.part) throw new Error(`kernel '${String(m.kernel)}' has no part to run on a worker thread`);
      entry.part(ins, outs, m.params as never, m.r0, m.r1, m.extra ? (view(m.extra) as Float64Array) : undefined);
    }
  } catch (e) {
    console.error(`cpu thread ${slot}: ${m.kernel}: ${(e as Error).stack ?? e}`);
    state = FAILED;
  }
  Atomics.store(flags, slot, state);
  Atomics.notify(flags, slot);
}

/**
 * Waits for BUSY (the calling thread posts a job, then flags it), runs the job, flags the result.
 * The wait times out now and then so that the thread can be stopped when the process exits.
 */
function serve(): void {
  for (;;) {
    const state = Atomics.load(flags, slot);
    if (state !== BUSY) {
      Atomics.wait(flags, slot, state, 50);
      continue;
    }
    const m = receiveMessageOnPort(jobs);
    if (m) runJob(m.message as PartJob);
  }
}

try {
  instantiateKernelModules(heap);
  Atomics.store(flags, slot, READY);
  setImmediate(serve);
} catch (e) {
  console.error(`cpu thread ${slot}: the WebAssembly kernels did not instantiate: ${(e as Error).stack ?? e}`);
  Atomics.store(flags, slot, FAILED);
}
