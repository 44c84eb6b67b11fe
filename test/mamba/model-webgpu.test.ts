// The tiny 2-layer Hugging Face fixture end to end on WebGPU: the next-token loss and the gradient
// of every parameter against the CPU backend's (both float32, same weights and token ids), then
// against the fixture's float64 golden gradients through mamba/parity.ts. test/mamba/parity.test.ts
// checks WebGPU's activations, logits and loss, not its gradients; this file adds them.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import * as mi from '../../engine/index.ts';
import type { Backend } from '../../engine/backend.ts';
import type { TypedArray } from '../../engine/dtype.ts';
import { checkParity, formatRows } from '../../mamba/parity.ts';
import { loadPretrained } from '../../mamba/pretrained.ts';
import { goldenIds, goldenPath, modelDir } from '../helpers/hf-fixture.ts';
import { getWebGpu } from '../helpers/webgpu.ts';

const gpu = await getWebGpu();
const ModelGrads = suite('webgpu 2-layer model gradients');
// As in test/engine/wgsl/grad-parity.test.ts: |gpu - cpu| <= TOL * max|cpu| over each gradient (float32
// on both sides, summed in different orders).
const TOL = 1e-4;

interface LossAndGrads {
  loss: number;
  grads: Map<string, TypedArray>;
  backends: Set<string>;
}

/** Mean next-token cross-entropy of the fixture's input ids and d loss / d every parameter. */
async function lossAndGrads(backend: Backend): Promise<LossAndGrads> {
  const model = await loadPretrained(modelDir('tiny'), { backend, dtype: 'float32' });
  const rows = await goldenIds('tiny');
  const T = rows[0].length;
  try {
    return await mi.tidyAsync(async () => {
      for (const p of model.params.values()) p.requiresGrad = true;
      const ids = model.ids(rows);
      const logits = model.forward(ids);
      const loss = mi.crossEntropy(mi.slice(logits, 1, 0, T - 1), mi.slice(ids, 1, 1, T));
      const g = mi.backwardFrom(loss);
      const grads = new Map<string, TypedArray>();
      const backends = new Set<string>();
      for (const [name, p] of model.params) {
        const gp = g.get(p);
        if (!gp) throw new Error(`model grads on ${backend.name}: no gradient reached ${name}`);
        grads.set(name, await gp.data());
        backends.add(gp.backend.name);
      }
      return { loss: (await loss.data())[0], grads, backends };
    });
  } finally {
    model.dispose();
  }
}

ModelGrads('tiny fixture: loss and every parameter gradient on WebGPU match the CPU', async () => {
  const want = await lossAndGrads(mi.cpuBackend());
  const got = await lossAndGrads(gpu!);
  assert.equal([...got.backends], [gpu!.name], 'gradients computed on WebGPU');
  assert.ok(Math.abs(got.loss - want.loss) <= 1e-5 * Math.abs(want.loss), `loss: WebGPU ${got.loss}, CPU ${want.loss}`);
  assert.equal([...got.grads.keys()].sort(), [...want.grads.keys()].sort());
  assert.ok(want.grads.size >= 10, `only ${want.grads.size} parameters`);
  for (const [name, w] of want.grads) {
    const g = got.grads.get(name)!;
    let scale = 0,
      worst = 0,
      at = 0;
    for (const v of w) scale = Math.max(scale, Math.abs(v));
    assert.ok(scale > 0, `${name}: the CPU gradient is all zero`);
    for (let i = 0; i < w.length; i++) {
      const err = Math.abs(g[i] - w[i]);
      if (!(err <= worst)) {
        worst = err;
        at = i;
      }
    }
    assert.ok(
      worst <= TOL * scale,
      `${name}: element ${at} is ${g[at]} on WebGPU, ${w[at]} on the CPU (|difference| ${worst.toExponential(2)} > ${TOL} * max|cpu| ${scale.toExponential(2)})`,
    );
  }
});

ModelGrads('tiny fixture: WebGPU gradients match the Hugging Face float64 goldens (float32 model)', async () => {
  const rows = await checkParity(modelDir('tiny'), goldenPath('tiny'), { backend: gpu!, only: ['f64.loss', 'f64.grad.'] });
  const grads = rows.filter((r) => r.name.startsWith('f64.grad.'));
  assert.ok(grads.length >= 10, `only ${grads.length} gradient rows`);
  assert.ok(
    rows.some((r) => r.name === 'f64.loss'),
    'no loss row',
  );
  const bad = rows.filter((r) => !r.ok);
  assert.is(bad.length, 0, `failed:\n${formatRows(bad)}`);
});

if (gpu) ModelGrads.run();
else console.log('webgpu model gradients: skipped (no adapter)');
