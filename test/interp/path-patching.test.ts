// interp/path-patching.ts on tiny random Mambas in float64, the planted runs of
// test/interp/patch-sweep.test.ts: the clean and corrupted inputs differ only at position S and the
// logit difference is read at P. Each result is checked against a computation that does not use the
// module: full activation patching (patchSweep), the corrupted run, a receiver value built by hand
// from the residual stream's sum (resid_pre_j = embed + sum of the mixer outputs below j), and a
// model with one mixer's output projection set to zero, so that the one path around it is planted.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as mi from '../../engine/index.ts';
import type { Tensor } from '../../engine/index.ts';
import type { MambaLM } from '../../mamba/model.ts';
import { logitDiffOf } from '../../interp/logit-lens.ts';
import { frozenMixers, pathPatch } from '../../interp/path-patching.ts';
import { layerHooks, patchSweep } from '../../interp/patch-sweep.ts';
import { B, K, P, S, T, tinyModel, V } from '../helpers/tiny-patch-model.ts';

const one = tinyModel(1, 'path-one');
const two = tinyModel(2, 'path-two');
const three = tinyModel(3, 'path-three');
// the planted model: layer 1 writes nothing to the residual, so layer 0 reaches layer 2 only directly
const planted = tinyModel(3, 'path-three');
{
  const name = 'backbone.layers.1.mixer.out_proj.weight';
  const old = planted.params.get(name)!;
  planted.params.set(name, mi.zeros(old.shape, { dtype: 'float64', backend: old.backend }));
  old.dispose();
}
const rng = new mi.Rng('path-ids');
const clean = Array.from({ length: B }, () => Array.from({ length: T }, () => rng.int(0, V - 1)));
const corrupt = clean.map((r) => r.map((v, t) => (t === S ? (v + 1 + rng.int(0, V - 2)) % V : v)));
const diff = { position: P, a: clean.map((r) => r[S]), b: corrupt.map((r) => r[S]) };

const close = (got: number, want: number, tol: number, what: string) =>
  assert.ok(Math.abs(got - want) <= tol, `${what}: ${got} vs ${want}`);
const mixer = (i: number) => `blocks.${i}.hook_mixer_out`;
const fullPatch = async (model: MambaLM, hook: string, t: number) =>
  (await patchSweep(model, clean, corrupt, diff, [hook], { positions: [t] })).values[0][t];

test('with every path open it equals full activation patching', async () => {
  // nothing frozen, the receiver the last residual at the scored position: every path is counted
  const open = await pathPatch(two, clean, corrupt, diff, {
    sender: { hook: mixer(0), positions: [S] },
    receivers: [{ hook: 'blocks.1.hook_resid_post', positions: [P] }],
    freeze: [],
  });
  const full = await fullPatch(two, mixer(0), S);
  assert.ok(Math.abs(full) > 1e-3, `the sender matters (${full})`);
  close(open.value, full, 1e-12, 'freeze: [] to the last residual');
  // frozen as usual, but the receivers are everything downstream of the sender (the next layer's input)
  const cut = await pathPatch(two, clean, corrupt, diff, {
    sender: { hook: mixer(0), positions: [S] },
    receivers: [{ hook: 'blocks.1.hook_resid_pre' }],
  });
  assert.equal(cut.frozen, [mixer(1)]);
  close(cut.value, full, 1e-12, 'receivers = the next layer input');
  // the SSM state: in one layer the clean embedding at S gives the clean state at P, which restores everything
  const state = await pathPatch(one, clean, corrupt, diff, {
    sender: { hook: 'hook_embed', positions: [S] },
    receivers: [{ hook: 'blocks.0.mixer.hook_h', positions: [P] }],
  });
  close(state.value, 1, 1e-12, 'embed -> h at P');
  const atS = await pathPatch(one, clean, corrupt, diff, {
    sender: { hook: 'hook_embed', positions: [S] },
    receivers: [{ hook: 'blocks.0.mixer.hook_h', positions: [S] }],
  });
  close(atS.value, await fullPatch(one, 'blocks.0.mixer.hook_h', S), 1e-12, 'embed -> h at S');
  // a state as the sender, its layer's output left to carry it
  const fromState = await pathPatch(two, clean, corrupt, diff, {
    sender: { hook: 'blocks.0.mixer.hook_h', positions: [S + K - 1] },
    receivers: [{ hook: 'blocks.1.hook_resid_pre' }],
  });
  close(fromState.value, await fullPatch(two, 'blocks.0.mixer.hook_h', S + K - 1), 1e-12, 'h -> next layer input');
});

test('with no path open it equals the corrupted run', async () => {
  // the residual stream is per position: a mixer output at S reaches the residual at P only through a later mixer, which is frozen
  const direct = await pathPatch(two, clean, corrupt, diff, {
    sender: { hook: mixer(0), positions: [S] },
    receivers: [{ hook: 'blocks.1.hook_resid_post', positions: [P] }],
  });
  const other = await pathPatch(two, clean, corrupt, diff, {
    sender: { hook: mixer(0), positions: [S] },
    receivers: [{ hook: 'blocks.1.hook_resid_pre', positions: [P] }],
  });
  const corrupted =
    (
      await logitDiffOf(
        two,
        mi.noGrad(() => two.forward(corrupt)),
        diff,
      )
    ).reduce((s, v) => s + v, 0) / B;
  for (const r of [direct, other]) {
    assert.is(r.patched, corrupted);
    assert.is(r.value, 0);
  }
});

/** The corrupted run with resid_pre of `layer` at S replaced by (corrupted + clean mixer 0 - corrupted mixer 0), by hand. */
async function directPathByHand(model: MambaLM, layer: number): Promise<number> {
  const c = mi
    .noGrad(() => model.runWithCache(clean, [mixer(0)]))
    .cache.get(mixer(0))!
    .dataSync();
  const k = mi.noGrad(() => model.runWithCache(corrupt, [mixer(0), `blocks.${layer}.hook_resid_pre`])).cache;
  const m0 = k.get(mixer(0))!.dataSync(),
    pre = k.get(`blocks.${layer}.hook_resid_pre`)!.dataSync();
  const want = Float64Array.from(pre);
  const d = model.config.hidden_size;
  for (let e = 0; e < B; e++) for (let q = 0; q < d; q++) want[(e * T + S) * d + q] += c[(e * T + S) * d + q] - m0[(e * T + S) * d + q];
  const hook = {
    name: `blocks.${layer}.hook_resid_pre`,
    fn: (x: Tensor) => mi.tensor(want, x.shape, { dtype: 'float64', backend: x.backend }),
  };
  const ld = await logitDiffOf(
    model,
    mi.noGrad(() => model.runWithHooks(corrupt, [hook])),
    diff,
  );
  const ldClean = await logitDiffOf(
    model,
    mi.noGrad(() => model.forward(clean)),
    diff,
  );
  const ldCorrupt = await logitDiffOf(
    model,
    mi.noGrad(() => model.forward(corrupt)),
    diff,
  );
  const mean = (a: Float64Array) => a.reduce((s, v) => s + v, 0) / B;
  return (mean(ld) - mean(ldCorrupt)) / (mean(ldClean) - mean(ldCorrupt));
}

test('the receiver sees the sender and not the mixers between them (three layers, by hand)', async () => {
  const r = await pathPatch(three, clean, corrupt, diff, {
    sender: { hook: mixer(0), positions: [S] },
    receivers: [{ hook: 'blocks.2.hook_resid_pre', positions: [S] }],
  });
  const want = await directPathByHand(three, 2);
  close(r.value, want, 1e-12, 'layer 0 -> layer 2 direct');
  assert.equal(r.frozen, [mixer(1), mixer(2)]);
  // and it is not the full effect, which also goes through layer 1
  assert.ok(Math.abs(r.value - (await fullPatch(three, mixer(0), S))) > 1e-4, 'the path through layer 1 is excluded');
});

test('on a model with a dead middle mixer it finds the one path around it and not the path into it', async () => {
  const sender = { hook: mixer(0), positions: [S] };
  // the receivers are the mixers' inputs (hook_norm), not the residual, which would carry the change on past the mixer
  const into1 = await pathPatch(planted, clean, corrupt, diff, { sender, receivers: [{ hook: 'blocks.1.hook_norm' }] });
  const into2 = await pathPatch(planted, clean, corrupt, diff, { sender, receivers: [{ hook: 'blocks.2.hook_norm' }] });
  const full = await fullPatch(planted, mixer(0), S);
  assert.ok(Math.abs(full) > 1e-3, `the sender matters (${full})`);
  close(into1.value, 0, 1e-12, 'layer 0 -> layer 1');
  close(into2.value, full, 1e-12, 'layer 0 -> layer 2');
  // the unplanted twin spreads the effect over both paths
  const twin1 = await pathPatch(three, clean, corrupt, diff, { sender, receivers: [{ hook: 'blocks.1.hook_norm' }] });
  assert.ok(Math.abs(twin1.value) > 1e-4, `in the twin layer 1 carries some (${twin1.value})`);
});

test('default freezing and bad input', async () => {
  assert.equal(frozenMixers(three, [{ hook: 'blocks.1.mixer.hook_h' }]), [mixer(0), mixer(2)]);
  assert.equal(layerHooks(two, 'mixer_out'), frozenMixers(two, [{ hook: 'hook_embed' }]));
  const rejects = async (o: Parameters<typeof pathPatch>[4], pattern: RegExp, ids = corrupt) => {
    try {
      await pathPatch(two, clean, ids, diff, o);
    } catch (e) {
      assert.match((e as Error).message, pattern);
      return;
    }
    assert.unreachable(`expected an error matching ${pattern}`);
  };
  const sender = { hook: mixer(0), positions: [S] };
  await rejects({ sender, receivers: [] }, /no receiver site/);
  await rejects({ sender, receivers: [{ hook: 'blocks.5.hook_resid_pre' }] }, /unknown receiver hook 'blocks.5.hook_resid_pre'/);
  await rejects({ sender, receivers: [{ hook: mixer(0) }] }, /both a sender and a receiver/);
  await rejects(
    { sender, receivers: [{ hook: 'blocks.1.hook_resid_pre', positions: [T] }] },
    /receiver blocks.1.hook_resid_pre position 10 is outside/,
  );
  await rejects(
    { sender, receivers: [{ hook: 'blocks.1.hook_resid_pre' }], freeze: ['blocks.1.mixer.hook_h'] },
    /state hook cannot be frozen/,
  );
  await rejects({ sender, receivers: [{ hook: 'blocks.1.hook_resid_pre' }] }, /corrupted ids are \[2,10\]/, corrupt.slice(1));
  await rejects({ sender, receivers: [{ hook: 'blocks.1.hook_resid_pre' }] }, /same logit difference/, clean);
});

test.after(() => {
  for (const m of [one, two, three, planted]) m.dispose();
});
test.run();
