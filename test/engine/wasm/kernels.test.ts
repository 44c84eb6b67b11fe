// Every case of the kernel parity table (test/engine/kernel-cases.ts) on the CPU backend with its
// WebAssembly kernels on (the candidate) against a CPU backend with them off (the scalar
// TypeScript kernels, the reference), on the same heap, outputs NaN-poisoned first on both sides.
//
// Tolerances: a kernel with a WebAssembly version (CPU_KERNELS[k].wasm) may accumulate in float32
// where the scalar kernel sums in float64 and rounds once, so its cases are judged by the table's
// own checks, which are written for float32 accumulation (the WebGPU kernels accumulate in
// float32 too): a length-K dot product within 1e-5 (|want| + 2K/pi), its float32 rounding bound
// K * eps * sum |a_k b_k| for normal inputs with margin; reductions within 1e-5 (|want| + sqrt(n)).
// Every other kernel runs the same scalar code on both sides and must match bit for bit.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { CpuBackend } from '../../../engine/cpu/backend.ts';
import { CPU_KERNELS } from '../../../engine/cpu/kernels/index.ts';
import { failures, KERNEL_CASES, KERNEL_NAMES, runKernelCases } from '../kernel-cases.ts';

const test = suite('wasm kernels in the CPU backend');
// explicit, so that the suite means the same under MI_WASM=0 (the default backend then runs scalar)
const wasm = new CpuBackend({ wasm: true });
const scalar = new CpuBackend({ wasm: false });

test('the candidate runs the WebAssembly kernels, the reference the scalar ones', () => {
  assert.match(wasm.description, /WebAssembly SIMD/);
  assert.ok(wasm.wasmEnabled);
  assert.match(scalar.description, /scalar TypeScript kernels/);
  assert.not.ok(scalar.wasmEnabled);
  assert.ok(
    KERNEL_NAMES.some((k) => CPU_KERNELS[k].wasm),
    'at least one kernel has a WebAssembly version',
  );
});

for (const kernel of KERNEL_NAMES) {
  const hasWasm = !!CPU_KERNELS[kernel].wasm;
  test(`${kernel}: ${hasWasm ? 'the WebAssembly kernel within the float32 checks of' : 'bit for bit the scalar kernel on'} every case`, async () => {
    const results = await runKernelCases(wasm, scalar, { kernels: [kernel], labels: ['wasm', 'scalar'] });
    assert.is(results.length, KERNEL_CASES[kernel].length);
    const failed = failures(results);
    assert.equal(failed, [], `${failed.length} of ${results.length} ${kernel} case(s) failed:\n  ${failed.join('\n  ')}`);
    if (!hasWasm) {
      const inexact = results.filter((r) => r.worst !== 0).map((r) => `${r.name}: worst ${r.worst}`);
      assert.equal(inexact, [], 'no WebAssembly kernel: both sides run the same scalar code');
    }
  });
}

test.run();
