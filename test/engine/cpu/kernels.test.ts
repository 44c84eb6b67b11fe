// Every case of the kernel parity table (test/engine/kernel-cases.ts) on the CPU backend, float32,
// against an independent float64 reference: the textbook loops of test/engine/kernel-reference.ts,
// written from the kernel contract and sharing no code with engine/cpu/kernels. Same cases, same
// checks and tolerances as the WebGPU suites (outputs NaN-poisoned first on both sides).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as mi from '../../../engine/index.ts';
import { CPU_KERNELS } from '../../../engine/cpu/kernels/index.ts';
import { failures, KERNEL_CASES, KERNEL_CASES_BY_FILE, KERNEL_NAMES, runKernelCases } from '../kernel-cases.ts';
import { float64Reference } from '../kernel-reference.ts';

const cpu = mi.cpuBackend();

test('the table has cases for every kernel of the CPU registry, grouped by op file, with unique names', () => {
  assert.equal([...KERNEL_NAMES].sort(), Object.keys(CPU_KERNELS).sort());
  const byFile = Object.values(KERNEL_CASES_BY_FILE).flatMap((group) => Object.keys(group));
  assert.equal([...byFile].sort(), [...KERNEL_NAMES].sort(), 'each kernel in exactly one op file');
  for (const kernel of KERNEL_NAMES) {
    const names = KERNEL_CASES[kernel].map((c) => c.name);
    assert.ok(names.length > 0, `${kernel} has no cases`);
    assert.is(new Set(names).size, names.length, `${kernel} has two cases of one name`);
  }
});

for (const kernel of KERNEL_NAMES) {
  test(`${kernel}: the CPU kernel (float32) matches the float64 reference on every case`, async () => {
    const results = await runKernelCases(cpu, float64Reference, { kernels: [kernel], labels: ['cpu', 'float64 reference'] });
    assert.is(results.length, KERNEL_CASES[kernel].length);
    const failed = failures(results);
    assert.equal(failed, [], `${failed.length} of ${results.length} ${kernel} case(s) failed:\n  ${failed.join('\n  ')}`);
  });
}

test('the runner catches an unwritten element, a wrong value and a throwing candidate', async () => {
  const broken = (mutate: (outs: Float32Array[]) => void) => ({
    ...float64Reference,
    run: ((kernel, ins, outs, p) => {
      float64Reference.run(kernel, ins, outs, p);
      mutate(outs.map((o) => (o as unknown as { data: Float32Array }).data));
    }) as typeof float64Reference.run,
  });
  const unwritten = await runKernelCases(
    broken((outs) => {
      outs[0][outs[0].length - 1] = NaN;
    }),
    float64Reference,
    { kernels: ['fill'] },
  );
  assert.ok(unwritten.every((r) => !r.ok && /element|relative error/.test(r.detail)));
  // the first element off by 0.1 (|v| + 1), or 0 for NaN: beyond every check of these kernels
  // (relative 1e-5 of |v| + scale with scale at most 2K/pi = 653, relative at most 1e-4 of
  // |v| + 1e-2 max|v|, exact)
  const off = await runKernelCases(
    broken((outs) => {
      const v = outs[0][0];
      outs[0][0] = Number.isNaN(v) ? 0 : v + 0.1 * (Math.abs(v) + 1);
    }),
    float64Reference,
    { kernels: ['softmax', 'topk', 'matmul'] },
  );
  const passed = off.filter((r) => r.ok).map((r) => r.name);
  assert.equal(passed, [], 'cases that missed the error');
  const threw = await runKernelCases(
    {
      alloc: cpu.alloc.bind(cpu),
      write: cpu.write.bind(cpu),
      read: cpu.read.bind(cpu),
      free: cpu.free.bind(cpu),
      run: () => {
        throw new Error('no such kernel');
      },
    },
    float64Reference,
    { kernels: ['argmax'], labels: ['wasm', 'cpu'] },
  );
  assert.ok(threw.every((r) => !r.ok && r.detail === 'wasm threw: no such kernel'));
});

test.run();
