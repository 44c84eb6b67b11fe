// Hook points: names and shapes, caching, replacement (ablation and patching) with gradients
// flowing through the replacement, and SSM-state patching that reaches later positions only.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import * as mi from '../../engine/index.ts';
import type { Tensor } from '../../engine/index.ts';
import { loadPretrained } from '../../mamba/pretrained.ts';
import type { MambaLM } from '../../mamba/model.ts';
import { goldenIds, modelDir } from '../helpers/hf-fixture.ts';

const test = suite('model hooks');
let model: MambaLM;
let ids: number[][];

test.before(async () => {
  model = await loadPretrained(modelDir('tiny'), { dtype: 'float64', backend: mi.cpuBackend() });
  ids = await goldenIds('tiny');
});
test.after(() => model.dispose());

/** Per position t (any batch row), the largest |a - b| over the vocabulary. */
function diffByPosition(a: Tensor, b: Tensor): number[] {
  const [B, T, V] = a.shape;
  const x = a.dataSync(),
    y = b.dataSync();
  return Array.from({ length: T }, (_, t) => {
    let m = 0;
    for (let bb = 0; bb < B; bb++)
      for (let v = 0; v < V; v++) {
        const i = (bb * T + t) * V + v;
        m = Math.max(m, Math.abs(x[i] - y[i]));
      }
    return m;
  });
}

test('hookNames lists every point once, and runWithCache returns each with its shape', () => {
  const names = model.hookNames();
  assert.is(new Set(names).size, names.length);
  assert.is(names.length, 1 + 2 * (2 + 13 + 2) + 2);
  const { cache } = mi.noGrad(() => model.runWithCache(ids, [...names]));
  const [B, T] = [ids.length, ids[0].length];
  const { hidden_size: d, intermediate_size: E, state_size: N, time_step_rank: R, vocab_size: V } = model.config;
  const want: Record<string, number[]> = {
    hook_embed: [B, T, d],
    'blocks.1.hook_norm': [B, T, d],
    'blocks.1.mixer.hook_in_proj': [B, T, 2 * E],
    'blocks.1.mixer.hook_x': [B, T, E],
    'blocks.1.mixer.hook_conv': [B, T, E],
    'blocks.1.mixer.hook_x_proj': [B, T, R + 2 * N],
    'blocks.1.mixer.hook_dt': [B, T, E],
    'blocks.1.mixer.hook_delta': [B, T, E],
    'blocks.1.mixer.hook_B': [B, T, N],
    'blocks.1.mixer.hook_h': [B, T, E, N],
    'blocks.1.mixer.hook_ssm_out': [B, T, E],
    'blocks.1.mixer.hook_gated': [B, T, E],
    'blocks.0.hook_resid_post': [B, T, d],
    hook_norm_f: [B, T, d],
    hook_logits: [B, T, V],
  };
  for (const n of names) assert.ok(cache.has(n), `no ${n} in the cache`);
  for (const [n, s] of Object.entries(want)) assert.equal([...cache.get(n)!.shape], s, n);
  // the defaults leave out the states
  assert.not.ok(mi.noGrad(() => model.runWithCache(ids)).cache.has('blocks.0.mixer.hook_h'));
});

test('cached activations are consistent with the equations', () => {
  const l = 'blocks.0.mixer.';
  const { logits, cache } = mi.noGrad(() => model.runWithCache(ids, [...model.hookNames()]));
  const plain = mi.noGrad(() => model.forward(ids));
  assert.ok(Math.max(...diffByPosition(logits, plain)) < 1e-12, 'asking for every hook (unfused path) changes nothing');
  const delta = cache.get(`${l}hook_delta`)!.dataSync(),
    dt = cache.get(`${l}hook_dt`)!.dataSync();
  for (let i = 0; i < dt.length; i++) assert.ok(Math.abs(delta[i] - Math.log1p(Math.exp(dt[i]))) < 1e-12);
  // y_t = C_t . h_t + D u_t from the cached states
  const h = cache.get(`${l}hook_h`)!.dataSync(),
    C = cache.get(`${l}hook_C`)!.dataSync();
  const u = cache.get(`${l}hook_conv_act`)!.dataSync(),
    ssm = cache.get(`${l}hook_ssm_out`)!.dataSync();
  const D = model.p('backbone.layers.0.mixer.D').dataSync();
  const { intermediate_size: E, state_size: N } = model.config;
  for (const [bt, e] of [
    [0, 0],
    [5, 7],
    [23, 31],
  ]) {
    let y = D[e] * u[bt * E + e];
    for (let n = 0; n < N; n++) y += C[bt * N + n] * h[(bt * E + e) * N + n];
    assert.ok(Math.abs(y - ssm[bt * E + e]) < 1e-12, `position ${bt}, channel ${e}`);
  }
});

test('zero-ablating hook_delta equals delta zeroed by hand (h stays 0, so y = D u)', () => {
  const layer = 1;
  const zero = (t: Tensor) => mi.zerosLike(t);
  const ablated = mi.noGrad(() => model.runWithHooks(ids, [{ name: `blocks.${layer}.mixer.hook_delta`, fn: zero }]));
  // by hand: with delta = 0 every state is 0, so the gated output is (D * u) * silu(z)
  let u: Tensor | null = null,
    z: Tensor | null = null;
  const D = model.p(`backbone.layers.${layer}.mixer.D`);
  const byHand = mi.noGrad(() =>
    model.runWithHooks(ids, [
      {
        name: `blocks.${layer}.mixer.hook_conv_act`,
        fn: (t) => {
          u = t;
        },
      },
      {
        name: `blocks.${layer}.mixer.hook_z`,
        fn: (t) => {
          z = t;
        },
      },
      { name: `blocks.${layer}.mixer.hook_gated`, fn: () => mi.mul(mi.mul(u!, D), mi.silu(z!)) },
    ]),
  );
  assert.ok(Math.max(...diffByPosition(ablated, byHand)) < 1e-12);
  const clean = mi.noGrad(() => model.forward(ids));
  const effect = Math.max(...diffByPosition(ablated, clean));
  assert.ok(effect > 1e-5, `the ablation matters (${effect})`);
});

test('patching the SSM state at position t changes outputs at positions >= t only', () => {
  const clean = mi.noGrad(() => model.forward(ids));
  const T = ids[0].length;
  for (const t of [0, 4, T - 1]) {
    const patched = mi.noGrad(() =>
      model.runWithHooks(ids, [
        {
          name: 'blocks.0.mixer.hook_h',
          positions: [t],
          fn: (h, ctx) => {
            assert.is(ctx.position, t);
            assert.equal([...h.shape], [ids.length, 32, 16]);
            return mi.mul(h, -3);
          },
        },
      ]),
    );
    const d = diffByPosition(patched, clean);
    for (let s = 0; s < t; s++) assert.is(d[s], 0, `t=${t}: position ${s} before the patch changed`);
    for (let s = t; s < T; s++) assert.ok(d[s] > 1e-6, `t=${t}: position ${s} did not change (${d[s]})`);
  }
  // returning the state unchanged (the split scan) reproduces the clean run
  const same = mi.noGrad(() => model.runWithHooks(ids, [{ name: 'blocks.1.mixer.hook_h', positions: [3, 8], fn: (h) => h }]));
  assert.ok(Math.max(...diffByPosition(same, clean)) < 1e-12);
});

test('a patched state is what the rest of the scan continues from', () => {
  // patch h_t of layer 0 with the state another prompt reaches at t: later outputs of layer 0
  // must equal a recurrent run that carries that state on
  const t = 5,
    T = ids[0].length;
  const donor = [ids[1], ids[0]];
  const donorStates = mi.noGrad(() => model.runWithCache(donor, ['blocks.0.mixer.hook_h'])).cache.get('blocks.0.mixer.hook_h')!;
  const hDonor = mi.squeeze(mi.slice(donorStates, 1, t, t + 1), 1);
  const { cache } = mi.noGrad(() =>
    model.run(ids, {
      hooks: [{ name: 'blocks.0.mixer.hook_h', positions: [t], fn: () => hDonor }],
      cache: ['blocks.0.mixer.hook_ssm_out', 'blocks.0.mixer.hook_h'],
    }),
  );
  const hs = cache.get('blocks.0.mixer.hook_h')!;
  const at = (x: Tensor, s: number) => mi.squeeze(mi.slice(x, 1, s, s + 1), 1).dataSync();
  assert.equal(at(hs, t), hDonor.dataSync(), 'the cached state at t is the patch');
  const clean = mi.noGrad(() => model.runWithCache(ids, ['blocks.0.mixer.hook_h'])).cache.get('blocks.0.mixer.hook_h')!;
  for (let s = t + 1; s < T; s++) {
    const a = at(hs, s),
      b = at(clean, s);
    let m = 0;
    for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
    assert.ok(m > 0, `state at ${s} still the clean one`);
  }
});

test('gradients flow through hook replacements, including a patched state', () => {
  const scale = mi.tensor([1.5], [1], { dtype: 'float64', requiresGrad: true });
  const run = (name: string, positions?: number[]) => {
    const logits = model.runWithHooks(ids, [{ name, positions, fn: (t) => mi.mul(t, scale) }]);
    return mi
      .backwardFrom(mi.sum(mi.square(logits)))
      .get(scale)!
      .dataSync()[0];
  };
  for (const [name, pos] of [
    ['blocks.0.mixer.hook_delta', undefined],
    ['blocks.1.hook_resid_pre', undefined],
    ['blocks.0.mixer.hook_h', [6]],
  ] as const) {
    const g = mi.tidy(() => run(name, pos ? [...pos] : undefined));
    assert.ok(Number.isFinite(g) && Math.abs(g) > 0, `${name}: gradient ${g}`);
  }
});

test('hook errors name the hook', () => {
  assert.throws(
    () => model.runWithHooks(ids, [{ name: 'blocks.9.hook_norm', fn: () => undefined }]),
    /unknown hook point 'blocks\.9\.hook_norm'/,
  );
  assert.throws(() => model.runWithHooks(ids, [{ name: 'hook_embed', fn: (t) => mi.slice(t, 1, 0, 2) }]), /hook hook_embed: returned/);
  assert.throws(() => model.runWithHooks(ids, [{ name: 'blocks.0.mixer.hook_h', fn: (t) => t }]), /read-only; pass positions/);
  assert.throws(
    () => model.runWithHooks(ids, [{ name: 'blocks.0.mixer.hook_h', positions: [99], fn: (t) => t }]),
    /position 99 is outside/,
  );
});

test.run();
