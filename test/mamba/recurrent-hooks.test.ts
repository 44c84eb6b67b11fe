// Hooks during generation (mamba/recurrent.ts stepWithHooks, generate's hooks, generateWithCache):
// a hook acting from an absolute position on (ctx.offset) and a state patch at a generated position
// give, token for token, what one parallel forward pass over the whole sequence with the same hooks
// gives; the activations cached over the generated tokens equal that pass's; hook points inside the
// fused step are refused by name.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as mi from '../../engine/index.ts';
import type { Hook } from '../../mamba/hooks.ts';
import type { MambaLM } from '../../mamba/model.ts';
import { loadPretrained } from '../../mamba/pretrained.ts';
import { generate, generateWithCache } from '../../mamba/recurrent.ts';
import { modelDir } from '../helpers/hf-fixture.ts';

const cpu = { backend: mi.cpuBackend() };
const PROMPT = [3, 17, 5, 42, 8, 8, 21];
const NEW = 8;

/** Adds 3 * e_k to the residual after layer 0 from absolute position `from` on (a steering vector). */
function steer(model: MambaLM, from: number): Hook {
  const d = model.config.hidden_size;
  return {
    name: 'blocks.0.hook_resid_post',
    fn: (t, ctx) => {
      const T = t.shape[1];
      const add = new Float32Array(T * d);
      for (let i = 0; i < T; i++) if (ctx.offset + i >= from) for (let k = 0; k < d; k += 3) add[i * d + k] = 3;
      return mi.add(t, mi.tensor(add, [1, T, d], { backend: t.backend }));
    },
  };
}

/** Scales layer 1's SSM state after reading the token at absolute position p by 300 (the tiny model's states are small). */
const scaleState = (p: number): Hook => ({ name: 'blocks.1.mixer.hook_h', positions: [p], fn: (h) => mi.mul(h, 300) });

/** The parallel forward over `ids` with `hooks`: logits [T, V] as rows, and the argmax per position. */
async function parallel(model: MambaLM, ids: number[], hooks: Hook[]) {
  const logits = mi.noGrad(() => mi.tidy(() => model.run([ids], { hooks }).logits));
  const data = await logits.data();
  logits.dispose();
  const V = model.config.vocab_size;
  const argmax = Array.from({ length: ids.length }, (_, t) => {
    let best = 0;
    for (let v = 1; v < V; v++) if (data[t * V + v] > data[t * V + best]) best = v;
    return best;
  });
  return { data, argmax };
}

test('generation with a steering hook from a prompt position on, and a state patch at a generated position, equals one parallel pass with the same hooks', async () => {
  const model = await loadPretrained(modelDir('tiny'), cpu);
  try {
    const plain = (await generate(model, PROMPT, { maxNewTokens: NEW }))[0];
    let steeredLogits: Float32Array | null = null;
    for (const hooks of [[steer(model, 4)], [steer(model, 4), scaleState(PROMPT.length + 2)]]) {
      const { tokens, activations } = await generateWithCache(model, PROMPT, ['hook_logits', 'blocks.1.hook_resid_post'], {
        maxNewTokens: NEW,
        hooks,
      });
      const seq = tokens[0];
      assert.is(seq.length, PROMPT.length + NEW);
      assert.not.equal(seq, plain, 'the hooks change what is generated');

      const read = seq.slice(0, -1); // every token the model read
      const ref = await parallel(model, read, hooks);
      // token for token: each generated token is the parallel pass's argmax at the position before it
      for (let t = PROMPT.length - 1; t < read.length; t++) assert.is(seq[t + 1], ref.argmax[t], `token ${t + 1}`);
      // the cached logits over every read token equal the parallel pass's
      const cached = await activations.get('hook_logits')!.data();
      assert.equal(activations.get('hook_logits')!.shape, [1, read.length, model.config.vocab_size]);
      let worst = 0;
      for (let i = 0; i < cached.length; i++) worst = Math.max(worst, Math.abs(cached[i] - ref.data[i]));
      assert.ok(worst < 1e-4, `cached logits within 1e-4 of the parallel pass (${worst})`);
      if (steeredLogits) {
        // the state patch moves the logits 10x beyond that tolerance (so the comparison can fail)
        let moved = 0;
        for (let i = 0; i < cached.length; i++) moved = Math.max(moved, Math.abs(cached[i] - steeredLogits[i]));
        assert.ok(moved > 1e-3, `the state patch moves the logits by ${moved}`);
      } else steeredLogits = Float32Array.from(cached);
      const resid = mi.noGrad(() =>
        mi.tidy(() => model.run([read], { hooks, cache: ['blocks.1.hook_resid_post'] }).cache.get('blocks.1.hook_resid_post')!),
      );
      const a = await activations.get('blocks.1.hook_resid_post')!.data(),
        b = await resid.data();
      resid.dispose();
      let w2 = 0;
      for (let i = 0; i < a.length; i++) w2 = Math.max(w2, Math.abs(a[i] - b[i]));
      assert.ok(w2 < 1e-4, `cached residual within 1e-4 (${w2})`);
      for (const t of activations.values()) t.dispose();
    }
  } finally {
    model.dispose();
  }
});

test('a hook point inside the fused step is refused by name; without hooks generate is unchanged', async () => {
  const model = await loadPretrained(modelDir('tiny'), cpu);
  try {
    const hook: Hook = { name: 'blocks.0.mixer.hook_dt', fn: () => undefined };
    await generate(model, PROMPT, { maxNewTokens: 3, hooks: [hook] }).then(
      () => assert.unreachable('stepped with a hook on hook_dt'),
      (e: Error) => assert.match(e.message, /step: hook point blocks\.0\.mixer\.hook_dt is inside the fused decoding step/),
    );
    // greedy decoding without hooks: each token is the plain forward's argmax
    const seq = (await generate(model, PROMPT, { maxNewTokens: NEW }))[0];
    const ref = await parallel(model, seq.slice(0, -1), []);
    for (let t = PROMPT.length - 1; t < seq.length - 1; t++) assert.is(seq[t + 1], ref.argmax[t]);
  } finally {
    model.dispose();
  }
});

test.run();
