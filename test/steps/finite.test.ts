// Numerical guards (steps/finite.ts): a NaN or Infinity in a JSON value or a safetensors tensor a
// step writes is an error naming the file and the place, and the runner (steps/runner.ts) fails
// the step before its folder replaces a finished one.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CpuBackend } from '../../engine/cpu/backend.ts';
import { writeSafetensors } from '../../mamba/safetensors.ts';
import { DEFAULT_CONFIG } from '../../steps/config.ts';
import { writeJsonAtomic } from '../../steps/files.ts';
import { checkFiniteTensors, firstNonFiniteJson } from '../../steps/finite.ts';
import { Runner } from '../../steps/runner.ts';
import type { Step } from '../../steps/step.ts';
import { withTempDir } from '../helpers/temp-dir.ts';

/** Asserts that `fn` rejects with a message matching `want` (uvu has no assert.rejects). */
async function rejects(fn: () => Promise<unknown>, want: RegExp): Promise<void> {
  try {
    await fn();
  } catch (e) {
    assert.match((e as Error).message, want);
    return;
  }
  assert.unreachable(`expected a rejection matching ${want}`);
}

test('firstNonFiniteJson names the JSON path of the first NaN or Infinity', () => {
  assert.is(firstNonFiniteJson({ a: [1, null, 'x', { b: 2 }], c: true }), null);
  assert.equal(firstNonFiniteJson({ a: [1, { b: Number.NaN }] }), { path: 'a[1].b', value: Number.NaN });
  assert.equal(firstNonFiniteJson([0, -Infinity]), { path: '[1]', value: -Infinity });
  assert.equal(firstNonFiniteJson({ t: Float64Array.of(1, Infinity) }), { path: 't[1]', value: Infinity });
  assert.equal(firstNonFiniteJson(Number.NaN), { path: '(top level)', value: Number.NaN });
  // what JSON.stringify writes: a Date by its toJSON, not its fields
  assert.is(firstNonFiniteJson({ when: new Date(0) }), null);
});

test(
  'writeJsonAtomic refuses a NaN, naming the file and the path, and writes nothing',
  withTempDir('mi-finite-', (dir) => {
    const path = join(dir, 'x.json');
    assert.throws(
      () => writeJsonAtomic(path, { rows: [{ p: 0.5 }, { p: Number.NaN }] }),
      /x\.json: rows\[1\]\.p is NaN, which JSON would write as null/,
    );
    assert.not.ok(existsSync(path));
    writeJsonAtomic(path, { rows: [{ p: null }] }); // "no value" written as null on purpose
    assert.equal(JSON.parse(readFileSync(path, 'utf8')), { rows: [{ p: null }] });
  }),
);

test(
  'checkFiniteTensors names the file, the tensor and the first bad index; integer tensors are not floats',
  withTempDir('mi-finite-', async (dir) => {
    await writeSafetensors(join(dir, 'ok.safetensors'), [
      { name: 'ids', dtype: 'I32', shape: [3], data: Int32Array.of(1, 2, 3) },
      { name: 'w', dtype: 'F32', shape: [2], data: Float32Array.of(1, 2) },
    ]);
    await checkFiniteTensors(dir);
    mkdirSync(join(dir, 'sub'));
    await writeSafetensors(join(dir, 'sub', 'bad.safetensors'), [
      { name: 'a', dtype: 'F32', shape: [2], data: Float32Array.of(0, 1) },
      { name: 'b', dtype: 'F64', shape: [2, 3], data: Float64Array.of(0, 1, 2, 3, -Infinity, Number.NaN) },
    ]);
    await rejects(
      () => checkFiniteTensors(dir),
      /^sub\/bad\.safetensors: tensor "b" holds -Infinity at flat index 4 \(of shape \[2,3\]\)$/,
    );
  }),
);

/** A one-step pipeline whose step writes `values` as a float32 tensor and a JSON summary. */
function planted(version: number, values: number[]): Step {
  return {
    id: 0,
    name: 'setup',
    title: 'planted',
    version,
    needs: [],
    configKeys: [],
    appliesToModel: false,
    async run(ctx) {
      mkdirSync(ctx.path('t'), { recursive: true });
      await writeSafetensors(ctx.path('t/acts.safetensors'), [
        { name: 'acts', dtype: 'F32', shape: [values.length], data: Float32Array.from(values) },
      ]);
      ctx.writeJson('summary.json', { n: values.length });
      return `v${version}`;
    },
  };
}

test(
  'a step whose tensor holds NaN fails naming it, and the finished result it would replace stays',
  withTempDir('mi-finite-', async (dir) => {
    const backend = new CpuBackend();
    const quiet = () => {};
    await new Runner([planted(1, [1, 2, 3, 4])], DEFAULT_CONFIG, dir, backend, quiet).run([0]);
    const final = join(dir, 'step-00-setup');
    const before = readFileSync(join(final, 't', 'acts.safetensors'));
    const runner = new Runner([planted(2, [1, 2, 3, Number.NaN])], DEFAULT_CONFIG, dir, backend, quiet);
    await rejects(
      () => runner.run([0]),
      /^step 0 \(setup\) failed: t\/acts\.safetensors: tensor "acts" holds NaN at flat index 3 \(of shape \[4\]\)$/,
    );
    assert.equal(readFileSync(join(final, 't', 'acts.safetensors')), before);
    assert.is(JSON.parse(readFileSync(join(final, 'done.json'), 'utf8')).summary, 'v1');
  }),
);

test.run();
