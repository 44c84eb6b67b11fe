// Per-kernel GPU time (WebGpuBackend.profile, engine/wgsl/profile.ts): the table sums pass times
// by kernel and label; on this machine's adapter a small Mamba forward under profile() lists its
// kernels with non-negative times that sum to no more than the wall time, and gives the same
// logits as without profiling. Speed is not asserted.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import * as mi from '../../../engine/index.ts';
import { formatProfile, summarise } from '../../../engine/wgsl/profile.ts';
import { makeConfig } from '../../../mamba/config.ts';
import { initMamba } from '../../../mamba/model.ts';
import { getWebGpu } from '../../helpers/webgpu.ts';

const table = suite('profile table: sums by kernel and pass label');

table('rows summed per (kernel, label), slowest first, shares adding to 1', () => {
  const p = summarise(
    [
      { kernel: 'matmul', label: 'matmul NN', ns: 3e6 },
      { kernel: 'scan', label: 'scan', ns: 5e6 },
      { kernel: 'matmul', label: 'matmul NN', ns: 1e6 },
      { kernel: 'scan', label: 'scan pack', ns: 1e6 },
    ],
    20,
    1,
  );
  assert.is(p.passes, 4);
  assert.is(p.gpuMs, 10);
  assert.is(p.invalid, 1);
  assert.equal(
    p.rows.map((r) => [r.label, r.calls, r.totalMs, r.meanMs]),
    [
      ['scan', 1, 5, 5],
      ['matmul NN', 2, 4, 2],
      ['scan pack', 1, 1, 1],
    ],
  );
  assert.ok(Math.abs(p.rows.reduce((s, r) => s + r.share, 0) - 1) < 1e-12);
  const text = formatProfile(p, 2);
  assert.match(text, /^GPU time 10\.000 ms in 4 passes \(wall 20\.0 ms\), 1 passes without a valid time/);
  assert.match(text, /\.\.\. 1 more$/);
});

table.run();

const gpuSuite = suite('WebGpuBackend.profile on this adapter');
const gpu = await getWebGpu();

gpuSuite('a small forward: its kernels, non-negative times, summing to at most the wall time', async () => {
  if (!gpu) return;
  if (!gpu.canProfile) {
    console.log(`webgpu: ${gpu.description} has no timestamp-query; profile() is not tested`);
    return;
  }
  const cfg = makeConfig({ vocab_size: 32, hidden_size: 32, num_hidden_layers: 2, state_size: 8, expand: 2 });
  const model = initMamba(cfg, new mi.Rng('test/profile'), { backend: gpu });
  const ids = [Array.from({ length: 16 }, (_, i) => (i * 5) % 32)];
  const forward = () => mi.tidyAsync(async () => (await mi.noGrad(() => model.forward(ids)).data()) as Float32Array);
  try {
    const plain = await forward(); // compiles the pipelines outside the profile
    const { result, profile } = await gpu.profile(forward);
    assert.equal(Array.from(result), Array.from(plain), 'profiling does not change the logits');
    const kernels = new Set(profile.rows.map((r) => r.kernel));
    for (const k of ['gather', 'rmsnorm', 'matmul', 'conv1d', 'scan']) assert.ok(kernels.has(k), `${k} in ${[...kernels].join(', ')}`);
    assert.ok(profile.passes >= 2 * 5, `${profile.passes} passes`);
    assert.is(
      profile.rows.reduce((s, r) => s + r.calls, 0),
      profile.passes,
    );
    for (const r of profile.rows) {
      assert.ok(r.totalMs >= 0 && r.meanMs >= 0, `${r.label}: ${r.totalMs} ms`);
      assert.ok(r.label.length > 0);
    }
    assert.is(profile.invalid, 0);
    assert.ok(profile.gpuMs <= profile.wallMs, `GPU ${profile.gpuMs} ms <= wall ${profile.wallMs} ms`);
    // the backend is back to normal batching: a second profile starts cleanly, nested ones are refused
    let nested = '';
    await gpu.profile(async () => {
      await gpu
        .profile(() => 0)
        .catch((e: Error) => {
          nested = e.message;
        });
    });
    assert.match(nested, /already running/);
    assert.equal(Array.from(await forward()), Array.from(plain));
  } finally {
    model.dispose();
  }
});

gpuSuite.run();
