// Byte budgets (steps/budget.ts): the estimate of what step 2 writes equals the quick run's shards
// byte for byte, and a config over a budget is one line naming the fields, the step and the bytes.
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { openSafetensors } from '../../mamba/safetensors.ts';
import { COLLECT_DIR, loadCollections } from '../../steps/artefacts.ts';
import { CpuBackend } from '../../engine/cpu/backend.ts';
import { checkBudget, collectedHooks, defaultBudget, formatBytes, studyShapes } from '../../steps/budget.ts';
import { DEFAULT_CONFIG, mergeConfig, PRESETS, type RunConfig } from '../../steps/config.ts';
import { readJson } from '../../steps/files.ts';
import { quickRun } from '../helpers/quick-run.ts';

const quick = mergeConfig(DEFAULT_CONFIG, PRESETS.quick, 'quick');
const withPatch = (base: RunConfig, patch: unknown) => mergeConfig(base, patch, 'test');

test("collect's shard bytes and rows on the quick run equal the estimate, hook by hook", async () => {
  const dir = await quickRun();
  const config = readJson<RunConfig>(join(dir, 'config.json'));
  const shapes = studyShapes(config);
  const collections = loadCollections(dir);
  assert.ok(collections.length > 0);
  for (const c of collections) {
    const shape = shapes.find((s) => s.label === c.task);
    assert.ok(shape, c.task);
    const want = collectedHooks(config, shape!);
    assert.equal(
      c.hooks.map((h) => [h.name, h.rows, h.dim]),
      want.map((h) => [h.hook, h.rows, h.dim]),
    );
    for (const [i, h] of c.hooks.entries()) {
      let bytes = 0;
      for (const shard of h.shards) {
        const path = join(dir, COLLECT_DIR, c.dir, shard);
        const f = await openSafetensors(path);
        try {
          const e = f.entry('acts');
          assert.is(e.dtype, 'F32');
          bytes += e.shape.reduce((a, b) => a * b, 4);
          // the file is its 8-byte length, the header and the data: no bytes beyond the estimate's
          assert.ok(statSync(path).size >= bytes, path);
        } finally {
          await f.close();
        }
      }
      assert.is(bytes, want[i].bytes, `${c.task} ${h.name}`);
    }
  }
});

test('a config over the budget is one line naming the fields, their values, the step and the bytes', () => {
  const budget = { bytes: 1e9, what: 'a test budget' };
  checkBudget(quick, studyShapes(quick), budget); // the quick config fits
  const big = withPatch(quick, { collect: { batchSize: 65536 } });
  assert.throws(
    () => checkBudget(big, studyShapes(big), budget),
    /^collect\.batchSize 65536: step 2 would hold at least 11\.9 GB for the hooks of one batch of \w[\w-]* \(budget 1\.00 GB, a test budget\)$/,
  );
  // the rows of a hook, loaded whole by steps 3 and 4, grow with batches x batchSize
  const many = withPatch(quick, { collect: { batches: 4096 } });
  assert.throws(
    () => checkBudget(many, studyShapes(many), budget),
    /^collect\.batches 4096 x collect\.batchSize 16(?: x sae\.latentsMultiplier 2)?: step [34] would hold/,
  );
  // one tensor past a WebGPU device's binding limit (128 MiB, the spec's default), RAM aside
  const gpu = { bytes: 1e12, what: 'RAM', tensorBytes: 128 * 2 ** 20, tensorWhat: 'maxStorageBufferBindingSize' };
  checkBudget(quick, studyShapes(quick), gpu);
  const wide = withPatch(quick, { collect: { batchSize: 4096 } });
  assert.throws(
    () => checkBudget(wide, studyShapes(wide), gpu),
    /blocks\.1\.mixer\.hook_h of one batch .*\(budget 134 MB, maxStorageBufferBindingSize\)$/,
  );
});

test('on the CPU backend one tensor may take at most its 4 GiB WebAssembly heap, whatever the RAM', () => {
  const cpu = defaultBudget(new CpuBackend());
  assert.is(cpu.tensorBytes, 2 ** 32);
  const budget = { ...cpu, bytes: 1e15 };
  checkBudget(quick, studyShapes(quick), budget);
  // hook_h of one batch: 65536 sequences x 32 positions x (64 x 16) states x 4 bytes = 8.6 GB
  const wide = withPatch(quick, { collect: { batchSize: 65536 }, train: { stateSize: 16 } });
  assert.throws(
    () => checkBudget(wide, studyShapes(wide), budget),
    /^collect\.batchSize 65536: step 2 would hold at least 8\.59 GB for blocks\.1\.mixer\.hook_h of one batch of \S+ \(budget 4\.29 GB, the CPU backend's WebAssembly heap\)$/,
  );
});

test('every preset fits 8 GB and the CPU heap; only the steps a run makes count', () => {
  const cpu = { bytes: 8e9, what: 'half of 16 GB', tensorBytes: 2 ** 32, tensorWhat: 'the CPU heap' };
  for (const [name, patch] of [['default', {}], ...Object.entries(PRESETS)] as const) {
    const c = withPatch(DEFAULT_CONFIG, patch);
    checkBudget(c, studyShapes(c), { ...cpu, what: name });
  }
  // step 1's length check at 2^20 tokens: 8 sequences x 1048576 x in_proj's 2E = 256 x 4 bytes (the
  // head runs at the scored positions only; whole logits would be 8 x 2^20 x 8192 x 4 = 275 GB)
  const paper = withPatch(DEFAULT_CONFIG, PRESETS.paper);
  const far = withPatch(paper, { train: { lengthGeneralisation: [65536, 1048576] } });
  assert.throws(
    () => checkBudget(far, studyShapes(far), cpu),
    /^train\.lengthGeneralisation \[65536,1048576\]: step 1 would hold at least 8\.59 GB for a layer's in_proj output for one held-out batch of \S+ \(8 sequences\) at length 1048576 \(budget /,
  );
  checkBudget(far, studyShapes(far), { bytes: 64e9, what: 'half of a 128 GB GPU machine' });
  checkBudget(far, studyShapes(far), cpu, [0]);
  checkBudget(far, studyShapes(far), cpu, [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]);
  assert.throws(() => checkBudget(far, studyShapes(far), cpu, [1]), /step 1 would hold/);
});

test('formatBytes: three significant digits in decimal units', () => {
  assert.is(formatBytes(999), '999 B');
  assert.is(formatBytes(1000), '1.00 kB');
  assert.is(formatBytes(12_600_000_000), '12.6 GB');
  assert.is(formatBytes(2.2e12), '2.20 TB');
});

test.run();
