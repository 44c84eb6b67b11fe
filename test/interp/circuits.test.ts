// interp/circuits.ts with interp/controls.ts and interp/attribution.ts on models whose weights are set
// by hand, so the truth is known:
//   planted  the answer (the current token) is carried by a known set S of residual channels: the
//            embedding writes a code of the token into S and noise of the same variance elsewhere,
//            the mixers write nothing, the head reads S only. Selection (grad x activation and
//            attribution patching on the selection half) must find S, and S's clean patch on the
//            test half must rank above all its matched controls.
//   null     every loud channel carries the answer alike (half the channels loud, half near-silent),
//            and the tested set is loud channels drawn at random: it is not special among sets of
//            its variance, so over seeds its rank p-values must be uniform. Uniform controls,
//            which draw silent channels too, must not pass the same check.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as mi from '../../engine/index.ts';
import { makeConfig } from '../../mamba/config.ts';
import { initMamba, type MambaLM } from '../../mamba/model.ts';
import { attributionPatching, gradTimesActivation, topByMagnitude } from '../../interp/attribution.ts';
import { profileAt, sliceExamples, splitHalves, withControls } from '../../interp/circuits.ts';
import { controlTest } from '../../interp/controls.ts';
import { cacheActivations, evalSet, idsOf, outcome, patchClean, positionMask, type Site } from '../../interp/patching.ts';
import { randomControl } from '../../interp/sites.ts';
import { IGNORE_INDEX, type TaskBatch } from '../../interp/tasks/index.ts';

const V = 12,
  T = 6,
  HOOK = 'blocks.0.hook_resid_post';

/**
 * A one-layer model that outputs the current token: residual = embedding (out_proj = 0), embedding
 * rows [code of the token on `carriers`, noise of std `noise[j]` on every other channel j], head
 * reads the carriers only: logit(v') = beta <code_v', h_carriers> / rms(h).
 */
function handSetModel(d: number, carriers: number[], noise: (j: number) => number, rng: mi.Rng): MambaLM {
  const cfg = makeConfig({
    vocab_size: V,
    hidden_size: d,
    num_hidden_layers: 1,
    state_size: 4,
    expand: 2,
    conv_kernel: 2,
    tie_word_embeddings: false,
    pad_token_id: null,
    bos_token_id: null,
    eos_token_id: null,
  });
  const model = initMamba(cfg, rng.fork('init'), { dtype: 'float64', backend: mi.cpuBackend() });
  const k = carriers.length;
  // codes: distinct sign vectors / sqrt(k), so every carrier entry has the same square (1/k); noise:
  // +-noise(j), so every other channel has the same square for every token (no channel stands out by chance)
  const codes: number[][] = [];
  const seen = new Set<string>();
  while (codes.length < V) {
    const s = Array.from({ length: k }, () => (rng.uniform() < 0.5 ? -1 : 1));
    if (seen.has(s.join()) || seen.has(s.map((x) => -x).join())) continue;
    seen.add(s.join());
    codes.push(s.map((x) => x / Math.sqrt(k)));
  }
  const scale = Math.sqrt(k);
  const E = new Float64Array(V * d),
    W = new Float64Array(V * d);
  const isCarrier = new Set(carriers);
  for (let v = 0; v < V; v++) {
    for (let j = 0; j < d; j++) if (!isCarrier.has(j)) E[v * d + j] = noise(j) * (rng.uniform() < 0.5 ? -1 : 1);
    carriers.forEach((c, i) => {
      E[v * d + c] = codes[v][i];
      W[v * d + c] = 0.5 * scale * codes[v][i];
    });
  }
  const set = (name: string, data: Float64Array) => {
    const old = model.params.get(name)!;
    model.params.set(name, mi.tensor(data, old.shape, { dtype: 'float64', backend: old.backend }));
    old.dispose();
  };
  set('backbone.embeddings.weight', E);
  set('lm_head.weight', W);
  for (const name of model.params.keys()) if (name.endsWith('out_proj.weight')) set(name, new Float64Array(model.params.get(name)!.size));
  return model;
}

/** Random tokens, scored at the last position (answer: that token); the corrupted copy has another token there. */
function currentTokenBatches(n: number, rng: mi.Rng): { clean: TaskBatch; corrupt: TaskBatch } {
  const inputs = Int32Array.from({ length: n * T }, () => rng.int(0, V));
  const targets = new Int32Array(n * T).fill(IGNORE_INDEX);
  const cIn = inputs.slice(),
    cTg = targets.slice();
  for (let b = 0; b < n; b++) {
    const i = b * T + T - 1;
    targets[i] = inputs[i];
    const other = (inputs[i] + rng.int(1, V)) % V;
    cIn[i] = other;
    cTg[i] = other;
  }
  return {
    clean: { inputs, targets, labels: {}, shape: [n, T] },
    corrupt: { inputs: cIn, targets: cTg, labels: {}, shape: [n, T] },
  };
}

/** Per control and for the circuit: the logit difference gained by patching clean into corrupted at the scored cells. */
async function patchEffects(model: MambaLM, clean: TaskBatch, corrupt: TaskBatch, circuit: Site, controls: Site[]) {
  const set = evalSet(clean, corrupt);
  const ids = idsOf(model, clean),
    cids = idsOf(model, corrupt);
  const cleanLd = (await outcome(model, ids, set, [])).logitDiff!;
  const corruptLd = (await outcome(model, cids, set, [])).logitDiff!;
  const act = cacheActivations(model, ids, [HOOK]).get(HOOK)!;
  const mask = positionMask('scored', clean);
  const run = (s: Site) => patchClean(model, cids, set, cleanLd, corruptLd, s, mask, act);
  const circ = await run(circuit);
  const ctl = [];
  for (const c of controls) ctl.push((await run(c)).gained);
  act.dispose();
  ids.dispose();
  cids.dispose();
  return { circuit: circ.gained, gap: circ.gap, controls: ctl };
}

test('planted circuit: selection on one half finds the carrier channels; on the other half they rank above every matched control', async () => {
  const rng = new mi.Rng('planted');
  const d = 32;
  const S = rng
    .fork('S')
    .sample(d, 6)
    .sort((a, b) => a - b);
  // noise channels with the carriers' variance (1/6 per entry) and a band of near-silent ones
  const model = handSetModel(d, S, (j) => (j % 4 === 0 ? 0.01 : Math.sqrt(1 / 6)), rng.fork('model'));
  const { clean, corrupt } = currentTokenBatches(128, rng.fork('data'));
  const halves = splitHalves(clean),
    corruptHalves = splitHalves(corrupt);
  const sel = halves.selection;
  const mask = positionMask('scored', sel);
  const [gxa] = await gradTimesActivation(model, sel, [{ hook: HOOK, mask }]);
  assert.equal(topByMagnitude(gxa, S.length), S, 'grad x activation selects the carriers');
  const ids = idsOf(model, sel);
  const cleanAct = cacheActivations(model, ids, [HOOK]).get(HOOK)!;
  const [ap] = await attributionPatching(model, corruptHalves.selection, sel.targets, [{ hook: HOOK, mask }], [cleanAct]);
  assert.equal(topByMagnitude(ap, S.length), S, 'attribution patching selects the carriers');
  cleanAct.dispose();
  ids.dispose();
  // matched controls from the selection half's profile, tested on the test half
  const circuit = await withControls(
    model,
    sel,
    { hook: HOOK, positions: 'scored', channels: topByMagnitude(gxa, S.length), source: 'attribution' },
    { count: 99, strata: 4, rng: rng.fork('controls') },
  );
  const profile = await profileAt(model, sel, HOOK, 'scored');
  const loudest = [...profile.variance].sort((a, b) => b - a)[0];
  for (const k of circuit.controls)
    assert.ok(
      k.channels.every((c) => profile.variance[c] > 1e-3 * loudest),
      'no near-silent channel',
    );
  const eff = await patchEffects(model, halves.test, corruptHalves.test, circuit, circuit.controls);
  const t = controlTest(eff.circuit, eff.controls, rng.fork('test'), { bootstrap: 500, ratioTo: eff.gap });
  assert.ok(t.estimate > 0.8, `the carriers restore ${t.estimate} of the logit difference`);
  assert.ok(t.controlQuantiles[4] < 0.2, `controls restore up to ${t.controlQuantiles[4]} (95%)`);
  assert.is(t.p, 1 / 100, 'the rank p-value sits at its floor: no control reaches the circuit');
  assert.ok(t.differenceInterval[0] > 0.5, `difference interval ${t.differenceInterval}`);
  model.dispose();
});

/** The rank p-value of a random set of loud channels in a model where every loud channel carries the answer alike. */
async function nullP(seed: number, uniformControls: boolean): Promise<number> {
  const rng = new mi.Rng(`null-${seed}`);
  const d = 32;
  const loud = Array.from({ length: 16 }, (_, i) => 2 * i);
  // every loud channel carries the code; odd channels are near-silent noise the head ignores
  const model = handSetModel(d, loud, () => 0.01, rng.fork('model'));
  const { clean, corrupt } = currentTokenBatches(64, rng.fork('data'));
  const sel = sliceExamples(clean, 0, 32);
  const circuitChannels = rng
    .fork('circuit')
    .sample(16, 3)
    .map((i) => loud[i])
    .sort((a, b) => a - b);
  const site = { hook: HOOK, positions: 'scored' as const, channels: circuitChannels, source: 'random' };
  const controls = uniformControls
    ? Array.from({ length: 49 }, (_, j) => randomControl(site, d, rng.fork(`u${j}`)))
    : (await withControls(model, sel, site, { count: 49, strata: 4, rng: rng.fork('controls') })).controls;
  const eff = await patchEffects(model, sliceExamples(clean, 32, 64), sliceExamples(corrupt, 32, 64), site, controls);
  model.dispose();
  return controlTest(eff.circuit, eff.controls, rng.fork('test'), { bootstrap: 1, ratioTo: eff.gap }).p;
}

test('null model: rank p-values of a set that is not special are uniform over seeds; uniform controls are not', async () => {
  const seeds = 30;
  const ks = (p: number[]) => {
    const s = [...p].sort((a, b) => a - b);
    return Math.max(...s.map((v, i) => Math.max((i + 1) / s.length - v, v - i / s.length)));
  };
  const matched: number[] = [];
  for (let s = 0; s < seeds; s++) matched.push(await nullP(s, false));
  const m = matched.reduce((a, b) => a + b, 0) / seeds;
  // uniform p: mean 0.5 with sd sqrt(1/12 / seeds) = 0.053; 3 sd. KS at alpha 0.01: 1.63 / sqrt(seeds) = 0.30
  const tol = 3 * Math.sqrt(1 / 12 / seeds);
  assert.ok(Math.abs(m - 0.5) < tol, `mean rank p ${m} (tolerance ${tol}): ${matched.map((p) => p.toFixed(2))}`);
  assert.ok(ks(matched) < 1.63 / Math.sqrt(seeds), `KS ${ks(matched)}: ${matched.map((p) => p.toFixed(2))}`);
  // uniform controls draw silent channels: the same unremarkable set looks special
  const uniform: number[] = [];
  for (let s = 0; s < 10; s++) uniform.push(await nullP(s, true));
  const mu = uniform.reduce((a, b) => a + b, 0) / uniform.length;
  assert.ok(mu < 0.2, `uniform controls: mean rank p ${mu}`);
});

test.run();
