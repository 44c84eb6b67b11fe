// Parity with Hugging Face MambaForCausalLM on the golden fixtures: every activation, the loss,
// parameter gradients, input-embedding gradients, the Jacobian norms and greedy decoding.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { cpuBackend } from '../../engine/index.ts';
import { join } from 'node:path';
import { checkParity, formatRows, type ParityRow } from '../../mamba/parity.ts';
import { openSafetensors, writeSafetensors } from '../../mamba/safetensors.ts';
import { getWebGpu } from '../helpers/webgpu.ts';
import { goldenPath, modelDir } from '../helpers/hf-fixture.ts';
import { withTempDir } from '../helpers/temp-dir.ts';

const test = suite('model parity with HF');

function assertAllOk(rows: ParityRow[], expectAtLeast: number): void {
  const bad = rows.filter((r) => !r.ok);
  assert.ok(rows.length >= expectAtLeast, `only ${rows.length} rows`);
  assert.is(bad.length, 0, `failed:\n${formatRows(bad)}`);
}

test('tiny: every golden tensor on the CPU (f32 and f64 models)', async () => {
  const rows = await checkParity(modelDir('tiny'), goldenPath('tiny'), { backend: cpuBackend() });
  // 15 f32 activations, 15 f64, loss, 21 grads, dlogit, jacobian, greedy
  assertAllOk(rows, 55);
  assert.ok(rows.some((r) => r.name === 'f64.jacobian_fro_out_t_in_s'));
  assert.ok(rows.some((r) => r.name === 'greedy_prompt5_new10'));
});

test('small (biases, rank 4, 3 layers): activations, loss, gradients, dlogit, greedy on the CPU', async () => {
  // The Jacobian of small (2112 x 2112) takes about a minute here; `npm run parity` checks it.
  const only = ['f32.', 'f64.layers', 'f64.logits', 'f64.norm_f', 'f64.embed', 'f64.loss', 'f64.grad.', 'f64.dlogit', 'greedy'];
  const rows = await checkParity(modelDir('small'), goldenPath('small'), { backend: cpuBackend(), only });
  assertAllOk(rows, 70);
});

test(
  'a golden tensor nothing computes is a failure',
  withTempDir('mamba-parity-', async (dir) => {
    // A golden file with the inputs, one tensor that is computed, and two that nothing computes:
    // an unknown activation under a known prefix, and a name with no known prefix at all.
    const src = await openSafetensors(goldenPath('tiny'));
    const ids = await src.read('input_ids');
    const logits = await src.read('f32.logits');
    await src.close();
    const path = join(dir, 'golden.safetensors');
    await writeSafetensors(path, [
      { name: 'input_ids', dtype: 'I64', shape: ids.shape, data: ids.data },
      { name: 'f32.logits', dtype: 'F32', shape: logits.shape, data: logits.data },
      { name: 'f32.layers.0.mystery_out', dtype: 'F32', shape: [2], data: [1, 2] },
      { name: 'attention_scores', dtype: 'F32', shape: [1], data: [0] },
    ]);
    const rows = await checkParity(modelDir('tiny'), path, { backend: cpuBackend() });
    const byName = new Map(rows.map((r) => [r.name, r]));
    assert.equal([...byName.keys()].sort(), ['attention_scores', 'f32.layers.0.mystery_out', 'f32.logits']);
    assert.ok(byName.get('f32.logits')!.ok, formatRows(rows));
    for (const n of ['f32.layers.0.mystery_out', 'attention_scores']) {
      assert.not.ok(byName.get(n)!.ok, `${n} passed`);
      assert.match(byName.get(n)!.note ?? '', /unknown golden tensor/);
    }
  }),
);

test('tiny on WebGPU (float32; f64 goldens at 1e-4 of scale)', async () => {
  const gpu = await getWebGpu(); // null where there is no adapter (it said so; REQUIRE_WEBGPU=1 throws instead)
  if (!gpu) return;
  let rows: ParityRow[];
  try {
    rows = await checkParity(modelDir('tiny'), goldenPath('tiny'), { backend: gpu, only: ['f32.', 'f64.logits', 'f64.loss', 'greedy'] });
  } catch (e) {
    // A missing WGSL kernel is a skip that says so, except where WebGPU is required (CI, the GPU
    // machine): there it is the failure it is.
    if (process.env.REQUIRE_WEBGPU !== '1' && /no WGSL kernel/.test((e as Error).message)) {
      console.log(`model parity on WebGPU skipped (REQUIRE_WEBGPU=1 makes this a failure): ${(e as Error).message}`);
      return;
    }
    throw e;
  }
  assertAllOk(rows, 17);
});

test.run();
