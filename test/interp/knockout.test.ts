// Edge knockout in the forward pass (interp/knockout.ts), on the tiny fixture in float64: one edge
// removes exactly alpha[e, t, s] u[s, e] from the layer's ungated scan output at t, with alpha from
// the influence kernel (interp/temporal.ts hiddenAttention, a separate implementation), and nothing
// at other positions of that layer; knocking out every edge into t from earlier positions equals
// the scan with the layer's input zeroed before t, at t; the outputs before t do not move.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as mi from '../../engine/index.ts';
import { edgeKnockoutHooks } from '../../interp/knockout.ts';
import { hiddenAttention } from '../../interp/temporal.ts';
import type { Hook } from '../../mamba/hooks.ts';
import { loadPretrained } from '../../mamba/pretrained.ts';
import { modelDir } from '../helpers/hf-fixture.ts';

const IDS = [3, 17, 5, 42, 8, 8, 21, 30, 2, 11];
const OUT = 'blocks.0.mixer.hook_ssm_out';

async function withModel(body: (m: Awaited<ReturnType<typeof loadPretrained>>) => Promise<void>) {
  const model = await loadPretrained(modelDir('tiny'), { backend: mi.cpuBackend(), dtype: 'float64' });
  try {
    await body(model);
  } finally {
    model.dispose();
  }
}

const run = (model: Awaited<ReturnType<typeof loadPretrained>>, hooks: Hook[]) =>
  mi.noGrad(() =>
    mi.tidy(() => {
      const r = model.run([IDS], { hooks, cache: [OUT] });
      return { out: r.cache.get(OUT)!.dataSync(), logits: r.logits.dataSync() };
    }),
  );

test('one edge: exactly alpha[e, t, s] u[s, e] less at t (alpha from the influence kernel), nothing else at that layer', () =>
  withModel(async (model) => {
    const E = model.config.intermediate_size,
      T = IDS.length,
      s = 2,
      t = 6;
    const ha = await hiddenAttention(model, IDS, 0);
    const plain = run(model, []);
    const knocked = run(model, edgeKnockoutHooks(model, [{ layer: 0, from: s, to: t }]));
    for (let pos = 0; pos < T; pos++)
      for (let e = 0; e < E; e++) {
        const want = plain.out[pos * E + e] - (pos === t ? ha.alpha[e * T * T + t * T + s] * ha.u[s * E + e] : 0);
        assert.ok(Math.abs(knocked.out[pos * E + e] - want) < 1e-10, `position ${pos}, channel ${e}`);
      }
    const V = model.config.vocab_size;
    for (let i = 0; i < t * V; i++) assert.is(knocked.logits[i], plain.logits[i], 'logits before t do not move');
    let moved = 0;
    for (let i = t * V; i < (t + 1) * V; i++) moved = Math.max(moved, Math.abs(knocked.logits[i] - plain.logits[i]));
    assert.ok(moved > 1e-6, `the knockout reaches the logits at t (${moved})`);
  }));

test('every edge into t from earlier positions equals the scan with the input before t zeroed, at t', () =>
  withModel(async (model) => {
    const E = model.config.intermediate_size,
      t = 7;
    const edges = Array.from({ length: t }, (_, s) => ({ layer: 0, from: s, to: t }));
    const knocked = run(model, edgeKnockoutHooks(model, [...edges, edges[3]]));
    const zeroPast: Hook = {
      name: 'blocks.0.mixer.hook_conv_act',
      fn: (u) => {
        const T = u.shape[1];
        const keep = new Float64Array(T).map((_, i) => (i >= t ? 1 : 0));
        return mi.mul(u, mi.tensor(keep, [1, T, 1], { dtype: 'float64', backend: u.backend }));
      },
    };
    const zeroed = run(model, [zeroPast]);
    for (let e = 0; e < E; e++)
      assert.ok(
        Math.abs(knocked.out[t * E + e] - zeroed.out[t * E + e]) < 1e-10,
        `channel ${e}: ${knocked.out[t * E + e]} vs ${zeroed.out[t * E + e]}`,
      );
  }));

test('bad edges: one line naming them', () =>
  withModel(async (model) => {
    assert.throws(() => edgeKnockoutHooks(model, [{ layer: 5, from: 0, to: 1 }]), /layer 5 is not in \[0, 2\)/);
    assert.throws(() => edgeKnockoutHooks(model, [{ layer: 0, from: 3, to: 1 }]), /edge 3 -> 1 must have 0 <= from <= to/);
    assert.throws(
      () => run(model, edgeKnockoutHooks(model, [{ layer: 0, from: 1, to: 40 }])),
      /edge 1 -> 40 is past the sequence \(T = 10\)/,
    );
  }));

test.run();
