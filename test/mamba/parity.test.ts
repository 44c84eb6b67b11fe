// Parity with Hugging Face MambaForCausalLM on the golden fixtures: every activation, the loss,
// parameter gradients, input-embedding gradients, the Jacobian norms and greedy decoding.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { cpuBackend } from '../../engine/index.ts';
import { checkParity, formatRows, type ParityRow } from '../../mamba/parity.ts';
import { getWebGpu } from '../helpers/webgpu.ts';
import { goldenPath, modelDir } from '../helpers/hf-fixture.ts';

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

test('a golden tensor nothing computes is a failure', async () => {
  const rows = await checkParity(modelDir('tiny'), goldenPath('tiny'), { backend: cpuBackend(), only: ['f32.logits'] });
  assert.equal(
    rows.map((r) => r.name),
    ['f32.logits'],
  );
});

test('tiny on WebGPU (float32; f64 goldens at 1e-4 of scale)', async () => {
  const gpu = await getWebGpu();
  if (!gpu) return;
  let rows: ParityRow[];
  try {
    rows = await checkParity(modelDir('tiny'), goldenPath('tiny'), { backend: gpu, only: ['f32.', 'f64.logits', 'f64.loss', 'greedy'] });
  } catch (e) {
    // The WGSL kernels are written alongside this model; until the ones it needs exist, say so.
    if (/no WGSL kernel/.test((e as Error).message)) {
      console.log(`model parity on WebGPU skipped: ${(e as Error).message}`);
      return;
    }
    throw e;
  }
  assertAllOk(rows, 17);
});

test.run();
