// steps/config.ts checkConfigRanges: every preset passes it, and each size, count and rate a step
// reads is refused with one message naming the field when it is out of range (a fraction where a
// count belongs, a negative, zero where a step divides by it, a probability above 1), so that a bad
// field is met before anything is written instead of inside the step that reads it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { tasks } from '../../interp/tasks/index.ts';
import { checkConfigRanges, DEFAULT_CONFIG, mergeConfig, PRESETS, type RunConfig } from '../../steps/config.ts';

const known = Object.keys(tasks);
const withField = (field: string, value: number): RunConfig => {
  const [group, key] = field.split('.');
  return mergeConfig(DEFAULT_CONFIG, key ? { [group]: { [key]: value } } : { [group]: value }, 'test');
};

test('the default config and every preset pass', () => {
  checkConfigRanges(DEFAULT_CONFIG, known);
  for (const patch of Object.values(PRESETS)) checkConfigRanges(mergeConfig(DEFAULT_CONFIG, patch, 'test'), known);
});

// [field, a value out of its range]
const BAD: [string, number][] = [
  ['collect.stateBatches', -1],
  ['collect.shardTokens', 0],
  ['sae.latentsMultiplier', 1.5],
  ['sae.k', 0],
  ['sae.l1', -1],
  ['sae.lr', 0],
  ['sae.evalSequences', 0],
  ['probes.folds', 1],
  ['probes.maxSamples', 1],
  ['probes.nLambda', 0],
  ['probes.alpha', 1.5],
  ['circuit.size', 0],
  ['circuit.strata', 2.5],
  ['patching.examples', 0],
  ['patching.seeds', 0],
  ['perturb.directions', 0],
  ['perturb.examples', -3],
  ['temporal.seqLen', 1e6],
  ['temporal.examples', 0],
  ['temporal.seeds', 0],
  ['dynamics.examples', 0],
  ['dynamics.initSeeds', 0],
  ['repro.threshold', 2],
  ['repro.sequences', 0],
  ['transfer.steps', 0],
  ['transfer.examples', 0],
  ['transfer.latents', 0],
  ['transfer.maxRows', 0],
  ['transfer.alignSequences', 0],
  ['copying.seqLen', 1],
  ['copying.sequences', 0],
  ['copying.varyLength', 2],
  ['copying.gateAlpha', 0],
  ['scale.batch', 0],
  ['scale.reps', 0],
];

test('each field out of range is refused, naming the field and the value', () => {
  for (const [field, value] of BAD) {
    assert.throws(
      () => checkConfigRanges(withField(field, value), known),
      (e: Error) => e.message.startsWith(`config field "${field}" must be `) && e.message.endsWith(`, got ${JSON.stringify(value)}`),
      `${field} = ${value}`,
    );
  }
});

test("step 14's shape lists: empty, or an entry out of range, is refused naming the list", () => {
  for (const [field, list] of [
    ['scale.hidden', []],
    ['scale.hidden', [64, 0]],
    ['scale.layers', [1.5]],
    ['scale.seqLens', [1]],
  ] as const) {
    const key = field.split('.')[1];
    assert.throws(
      () => checkConfigRanges(mergeConfig(DEFAULT_CONFIG, { scale: { [key]: list } }, 'test'), known),
      (e: Error) => e.message.startsWith(`config field "${field}" must be `),
      `${field} = ${JSON.stringify(list)}`,
    );
  }
});

test.run();
