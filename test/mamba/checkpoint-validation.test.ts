// Every malformed checkpoint of test/helpers/malformed-checkpoints.ts through loadPretrained: an
// error naming the file, tensor or field (one line); the checks that guard memory and numerics
// (parameter budget from config.json alone, non-finite weights) against independent computations.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cpuBackend } from '../../engine/index.ts';
import { checkParameterBudget, expectedParameterShapes, makeConfig, parameterCount, readConfig } from '../../mamba/config.ts';
import { firstNonFinite } from '../../mamba/fetch-checkpoint.ts';
import { loadPretrained, validatePretrained } from '../../mamba/pretrained.ts';
import { modelDir } from '../helpers/hf-fixture.ts';
import { buildCase, malformedCases } from '../helpers/malformed-checkpoints.ts';
import { withTempDir } from '../helpers/temp-dir.ts';

const quiet = { warn: () => undefined };

test(
  'every malformed checkpoint is one error line naming the file, tensor or field',
  withTempDir('mamba-bad-ckpt-', async (root) => {
    const cases = malformedCases();
    assert.ok(cases.length >= 40, `${cases.length} cases`);
    for (const [i, c] of cases.entries()) {
      const dir = buildCase(root, i, c);
      const started = Date.now();
      const outcome = await loadPretrained(dir, { backend: cpuBackend() }).then(
        () => null,
        (e: Error) => e,
      );
      assert.ok(outcome, `${c.name}: loaded without an error`);
      assert.match(outcome!.message, c.expect, `${c.name}: ${outcome!.message}`);
      assert.not.match(outcome!.message, /\n/, `${c.name}: more than one line`);
      // a failed check reads nothing large and allocates nothing sized by the config
      assert.ok(Date.now() - started < 5000, `${c.name}: took ${Date.now() - started} ms`);
      // validatePretrained, the check a CLI makes before it writes anything, throws the same error
      const early = await validatePretrained(dir).then(
        () => null,
        (e: Error) => e,
      );
      assert.is(early?.message, outcome!.message, `${c.name}: validatePretrained`);
    }
  }),
);

test(
  'allowNonFinite loads a NaN weight for inspection, and the NaN is where the file put it',
  withTempDir('mamba-bad-ckpt-', async (root) => {
    const c = malformedCases().find((x) => x.name === 'NaN weight')!;
    const dir = buildCase(root, 0, c);
    await validatePretrained(dir, { allowNonFinite: true });
    const model = await loadPretrained(dir, { backend: cpuBackend(), allowNonFinite: true });
    const a = await model.params.get('backbone.layers.0.mixer.A_log')!.data();
    assert.ok(Number.isNaN(a[37]));
    assert.is(firstNonFinite(a)?.index, 37);
    model.dispose();
  }),
);

test('firstNonFinite finds the first NaN or infinity and nothing in finite data', () => {
  assert.is(firstNonFinite(new Float32Array([0, -0, 3.4e38, -1e-45])), null);
  assert.equal(firstNonFinite(new Float64Array([1, 2, Number.NEGATIVE_INFINITY, Number.NaN])), {
    index: 2,
    value: Number.NEGATIVE_INFINITY,
  });
  assert.is(firstNonFinite(new Float32Array([Number.NaN]))!.index, 0);
});

test('parameterCount equals the sum of the expected shapes, for the fixtures and variants', async () => {
  const configs = [await readConfig(modelDir('tiny'), quiet), await readConfig(modelDir('small'), quiet)];
  for (const use_bias of [false, true])
    for (const use_conv_bias of [false, true])
      for (const tie_word_embeddings of [false, true])
        configs.push(
          makeConfig({
            vocab_size: 37,
            hidden_size: 12,
            state_size: 5,
            num_hidden_layers: 3,
            conv_kernel: 3,
            time_step_rank: 2,
            use_bias,
            use_conv_bias,
            tie_word_embeddings,
          }),
        );
  for (const c of configs) {
    let sum = 0;
    for (const shape of expectedParameterShapes(c).values()) sum += shape.reduce((a, b) => a * b, 1);
    assert.is(parameterCount(c), sum, JSON.stringify({ b: c.use_bias, cb: c.use_conv_bias, t: c.tie_word_embeddings }));
  }
});

test('the parameter budget is checked at the stated bytes per number, with the field and bytes named', async () => {
  const c = await readConfig(modelDir('tiny'), quiet);
  const bytes = parameterCount(c) * 4;
  checkParameterBudget(c, 4, bytes, 'x', 'test'); // exactly at the budget passes
  assert.throws(
    () => checkParameterBudget(c, 4, bytes - 1, 'x', 'test'),
    new RegExp(`would need [^(]*\\(${bytes} bytes\\) \\(num_hidden_layers 2 x .*over the budget of .*\\(${bytes - 1} bytes\\)`),
  );
  assert.throws(() => checkParameterBudget(c, 8, bytes, 'x', 'test'), /over the budget/);
  // through loadPretrained, with a budget one byte short of what float32 needs
  await loadPretrained(modelDir('tiny'), { backend: cpuBackend(), memoryBudgetBytes: bytes - 1 }).then(
    () => assert.unreachable('loaded over budget'),
    (e: Error) => assert.match(e.message, /tiny\/model.*over the budget .*memoryBudgetBytes/),
  );
  (await loadPretrained(modelDir('tiny'), { backend: cpuBackend(), memoryBudgetBytes: bytes })).dispose();
});

test.run();
