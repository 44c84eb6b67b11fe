// Every case of the kernel parity table (test/engine/kernel-cases.ts) on WebGPU against the CPU
// backend: one test per kernel, each running all of that kernel's cases (seeded inputs of awkward
// sizes, NaN-poisoned outputs, the table's checks and tolerances). Then the WebGPU backend's own
// errors: out-of-range indices, a missing kernel, a bad WGSL module, the storage-buffer limit.
// Where this machine has no adapter the tests skip, unless REQUIRE_WEBGPU=1 (test/helpers/webgpu.ts).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import * as mi from '../../../engine/index.ts';
import { WGSL_KERNELS } from '../../../engine/wgsl/kernels/index.ts';
import { runKernel } from '../../helpers/kernel-run.ts';
import { getWebGpu } from '../../helpers/webgpu.ts';
import { failures, KERNEL_CASES, KERNEL_NAMES, runKernelCases } from '../kernel-cases.ts';

const gpu = await getWebGpu();
const cpu = mi.cpuBackend();
const Kernels = suite('webgpu kernels vs cpu');
const skip = !gpu;

const rng = new mi.Rng('webgpu-kernels');
function randn(n: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal();
  return a;
}

for (const kernel of KERNEL_NAMES) {
  Kernels(`${kernel}: WebGPU matches the CPU on every case of the table`, async () => {
    if (skip) return;
    const results = await runKernelCases(gpu!, cpu, { kernels: [kernel], labels: ['gpu', 'cpu'] });
    assert.is(results.length, KERNEL_CASES[kernel].length);
    const failed = failures(results);
    assert.equal(failed, [], `${failed.length} of ${results.length} ${kernel} case(s) failed:\n  ${failed.join('\n  ')}`);
  });
}

Kernels('an out-of-range index poisons gather and scatter_add with NaN on WebGPU (the CPU throws)', async () => {
  if (skip) return;
  const [g] = await runKernel(gpu!, 'gather', [randn(6), new Int32Array([0, 3])], [{ dtype: 'float32', size: 4 }], {
    n: 2,
    rows: 3,
    cols: 2,
  });
  assert.ok(!Number.isNaN(g[0]) && Number.isNaN(g[2]) && Number.isNaN(g[3]), `gather row of index 3: ${[...g]}`);
  const [s] = await runKernel(gpu!, 'scatter_add', [randn(4), new Int32Array([0, -1])], [{ dtype: 'float32', size: 6 }], {
    n: 2,
    rows: 3,
    cols: 2,
  });
  assert.ok(
    s.every((v) => Number.isNaN(v)),
    `scatter_add with index -1: ${[...s]}`,
  );
});

Kernels('a missing kernel and a bad WGSL module are errors naming them', async () => {
  if (skip) return;
  const saved = WGSL_KERNELS.onehot;
  delete WGSL_KERNELS.onehot;
  try {
    assert.throws(() => gpu!.run('onehot', [], [], { n: 0, depth: 0 }), /onehot/);
  } finally {
    WGSL_KERNELS.onehot = saved;
  }
  try {
    await gpu!.checkWgsl('@compute @workgroup_size(1) fn main() { let x: f32 = undefined_name; }', 'broken test kernel');
    assert.unreachable('compiled');
  } catch (e) {
    const msg = (e as Error).message;
    assert.match(msg, 'broken test kernel');
    assert.match(msg, /line 1:/);
  }
});

Kernels('a tensor beyond maxStorageBufferBindingSize is an error naming the size and the limit', () => {
  if (skip) return;
  const limit = gpu!.device.limits.maxStorageBufferBindingSize;
  assert.throws(
    () => gpu!.alloc('float32', limit / 4 + 1),
    (e: Error) => e.message.includes(String(limit)) && e.message.includes('maxStorageBufferBindingSize'),
  );
  assert.not.ok(gpu!.supports('float64'));
});

Kernels.run();
