// mamba/hook-aliases.ts: every alias lands on one of our hook points, our names resolve to
// themselves (clashes flagged), and the layouts are the other libraries' own definitions: the
// TransformerLens state [b, E, T, N] gives y_t = sum_n C_t[n] S_t[c, n] + D[c] u_t[c] in their indexing.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as mi from '../../engine/index.ts';
import { HOOK_ALIASES, resolveHookName, toOurLayout, transposeStates } from '../../mamba/hook-aliases.ts';
import { hookNames } from '../../mamba/hooks.ts';
import { loadPretrained } from '../../mamba/pretrained.ts';
import { goldenIds, modelDir } from '../helpers/hf-fixture.ts';

const layers = 2;
const ours = new Set(hookNames(layers));

test('every alias names one of our hook points (or none, with a reason), for each layer', () => {
  for (const a of HOOK_ALIASES) {
    for (let i = 0; i < layers; i++) {
      const theirs = a.theirs.replace('{i}', String(i)).replace('{t}', '3');
      if (a.ours === null) {
        assert.ok(a.note, `${theirs} says why it has no counterpart`);
        assert.throws(
          () => resolveHookName(theirs, { source: a.source }),
          (e: Error) => e.message.includes('no counterpart') && e.message.includes(a.note!),
        );
        continue;
      }
      const r = resolveHookName(theirs, { source: a.source });
      assert.ok(ours.has(r.name), `${a.source} ${theirs} -> ${r.name}`);
      assert.is(r.name, a.ours.replace('{i}', String(i)));
    }
  }
});

test('our own names resolve to themselves; the clashes say what the other library means', () => {
  for (const n of ours) {
    const r = resolveHookName(n);
    assert.is(r.name, n);
    assert.is(r.source, 'mamba-interp');
  }
  const clashes = [...ours].filter((n) => resolveHookName(n).clash);
  assert.equal(clashes.sort(), [
    'blocks.0.mixer.hook_conv',
    'blocks.0.mixer.hook_ssm_out',
    'blocks.1.mixer.hook_conv',
    'blocks.1.mixer.hook_ssm_out',
  ]);
  assert.match(resolveHookName('blocks.1.mixer.hook_ssm_out').clash!, /mixer output/);
  assert.is(resolveHookName('blocks.1.mixer.hook_ssm_out', { source: 'transformer-lens' }).name, 'blocks.1.hook_mixer_out');
  assert.is(resolveHookName('blocks.1.hook_ssm_output').name, 'blocks.1.mixer.hook_ssm_out'); // MambaLens
  assert.equal(resolveHookName('blocks.0.hook_h.17'), {
    name: 'blocks.0.mixer.hook_h',
    source: 'mamba-lens',
    layout: 'state-at-position',
    position: 17,
  });
  assert.is(resolveHookName('hook_norm').name, 'hook_norm_f');
  assert.is(resolveHookName('blocks.0.hook_in_proj').name, 'blocks.0.mixer.hook_x');
  assert.throws(() => resolveHookName('blocks.0.attn.hook_q'), /unknown hook name 'blocks\.0\.attn\.hook_q'/);
  assert.throws(() => resolveHookName('blocks.0.hook_ssm_output', { source: 'transformer-lens' }), /unknown hook name/);
  assert.throws(() => resolveHookName('embed.hook_out', { source: 'mamba-interp' }), /not one of this project's hook names/);
});

test("TransformerLens's hook_ssm_state layout: our hook_h transposed satisfies their y_t = C_t . S_t + D u_t", async () => {
  const model = await loadPretrained(modelDir('tiny'), { dtype: 'float64', backend: mi.cpuBackend() });
  try {
    const ids = await goldenIds('tiny');
    const L = 1;
    const names = [
      `blocks.${L}.mixer.hook_h`,
      `blocks.${L}.mixer.hook_C`,
      `blocks.${L}.mixer.hook_conv_act`,
      `blocks.${L}.mixer.hook_ssm_out`,
    ];
    const { cache } = model.runWithCache(ids, names);
    const r = resolveHookName(`blocks.${L}.mixer.hook_ssm_state`);
    assert.is(r.name, names[0]);
    const S = toOurLayout({ ...r, layout: 'channel-first' }, cache.get(names[0])!); // ours -> theirs: the swap is its own inverse
    const [B, E, T, N] = S.shape;
    assert.ok(E !== T, 'E and T differ, so a wrong axis order cannot pass');
    assert.equal(transposeStates(S).shape, cache.get(names[0])!.shape);
    const s = S.dataSync(),
      C = cache.get(names[1])!.dataSync(),
      u = cache.get(names[2])!.dataSync(),
      y = cache.get(names[3])!.dataSync(),
      D = model.p(`backbone.layers.${L}.mixer.D`).dataSync();
    let worst = 0;
    for (let b = 0; b < B; b++)
      for (let t = 0; t < T; t++)
        for (let c = 0; c < E; c++) {
          let v = D[c] * u[(b * T + t) * E + c];
          for (let n = 0; n < N; n++) v += C[(b * T + t) * N + n] * s[((b * E + c) * T + t) * N + n];
          worst = Math.max(worst, Math.abs(v - y[(b * T + t) * E + c]));
        }
    assert.ok(worst < 1e-9, `y differs by ${worst}`);
    for (const t of cache.values()) t.dispose();
  } finally {
    model.dispose();
  }
});

test("toOurLayout: TransformerLens's untrimmed channel-first conv output [b, E, T + K - 1] becomes our [b, T, E]", () => {
  const [B, E, T, K] = [2, 3, 5, 4];
  const theirs = mi.tensor(
    Float64Array.from({ length: B * E * (T + K - 1) }, (_, i) => i),
    [B, E, T + K - 1],
    { dtype: 'float64' },
  );
  const r = resolveHookName('blocks.0.mixer.conv1d.hook_out');
  assert.is(r.layout, 'channel-first-untrimmed');
  assert.throws(() => toOurLayout(r, theirs), /needs seqLen/);
  const got = toOurLayout(r, theirs, { seqLen: T });
  assert.equal(got.shape, [B, T, E]);
  const g = got.dataSync();
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T; t++) for (let e = 0; e < E; e++) assert.is(g[(b * T + t) * E + e], (b * E + e) * (T + K - 1) + t);
});

test.run();
