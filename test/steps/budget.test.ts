// Byte budgets (steps/budget.ts): the estimate of what step 2 writes equals the quick run's shards
// byte for byte, and a config over a budget is one line naming the fields, the step and the bytes.
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { openSafetensors } from '../../mamba/safetensors.ts';
import { COLLECT_DIR, loadCollections, loadTrainedModel, loadTrainedModels } from '../../steps/artefacts.ts';
import { CpuBackend } from '../../engine/cpu/backend.ts';
import * as mi from '../../engine/index.ts';
import { splitHalves } from '../../interp/circuits.ts';
import { cacheActivations, idsOf } from '../../interp/patching.ts';
import { getTask } from '../../interp/tasks/index.ts';
import { measure } from '../../interp/scaling.ts';
import { hiddenAttention } from '../../interp/temporal.ts';
import { analysisAllocations, transferAllocations } from '../../steps/budget-analysis.ts';
import { checkBudget, collectedHooks, defaultBudget, formatBytes, scaleAllocations, studyShapes } from '../../steps/budget.ts';
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

test('every preset but paper fits 8 GB and the CPU heap, paper a GPU machine; only the steps a run makes count', () => {
  const cpu = { bytes: 8e9, what: 'half of 16 GB', tensorBytes: 2 ** 32, tensorWhat: 'the CPU heap' };
  for (const [name, patch] of [['default', {}], ...Object.entries(PRESETS)] as const) {
    if (name === 'paper') continue;
    const c = withPatch(DEFAULT_CONFIG, patch);
    checkBudget(c, studyShapes(c), { ...cpu, what: name });
  }
  // paper fits half of a 128 GB machine with a 4 GiB tensor limit (the CPU heap; WebGPU's binding
  // limit on most devices), not 8 GB: step 5 caches both layers' hook_h of 64 sequences of 4096 tokens
  // (x2). Step 11's mixture model (vocabulary 8195, length 4096) takes its last residuals in forwards
  // of LAST_RESIDUAL_TOKENS: 4 sequences' logits, 0.54 GB, where all 64 at once were 8.59 GB
  const gpu = { bytes: 64e9, what: 'half of a 128 GB GPU machine', tensorBytes: 2 ** 32, tensorWhat: 'a 4 GiB binding' };
  const paperOnly = withPatch(DEFAULT_CONFIG, PRESETS.paper);
  checkBudget(paperOnly, studyShapes(paperOnly), gpu);
  assert.throws(() => checkBudget(paperOnly, studyShapes(paperOnly), cpu), /^patching\.examples 64: step 5 would hold at least 8\.88 GB/);
  const logits = transferAllocations(paperOnly, studyShapes(paperOnly)).find((a) => a.what.startsWith('the logits'))!;
  assert.is(logits.what, 'the logits of the mixture model on 4 sequences');
  assert.is(formatBytes(logits.bytes), '537 MB');
  // step 1's length check at 2^20 tokens: 8 sequences x 1048576 x in_proj's 2E = 256 x 4 bytes (the
  // head runs at the scored positions only; whole logits would be 8 x 2^20 x 8192 x 4 = 275 GB)
  const paper = withPatch(DEFAULT_CONFIG, PRESETS.paper);
  const far = withPatch(paper, { train: { lengthGeneralisation: [65536, 1048576] } });
  assert.throws(
    () => checkBudget(far, studyShapes(far), cpu, [1]),
    /^train\.lengthGeneralisation \[65536,1048576\]: step 1 would hold at least 8\.59 GB for a layer's in_proj output for one held-out batch of \S+ \(8 sequences\) at length 1048576 \(budget /,
  );
  checkBudget(far, studyShapes(far), { bytes: 64e9, what: 'half of a 128 GB GPU machine' });
  checkBudget(far, studyShapes(far), cpu, [0]);
  checkBudget(far, studyShapes(far), cpu, [2, 3, 4, 12, 13, 14]);
});

// Each of steps 5-11's estimates (steps/budget-analysis.ts), driven past a 1 GB budget by its own
// field; `steps` limits the check to the step named, where another step's estimate of the same field is larger
const ANALYSIS_CASES: [string, unknown, RegExp, number[]?, string?][] = [
  [
    'quick',
    { patching: { examples: 65536 } },
    /^patching\.examples 65536: step 5 would hold at least [\d.]+ [GT]B for the clean activations and attribution-patching weights of \S+'s 65536 selection sequences/,
  ],
  [
    'quick',
    { circuit: { controls: 10_000_000, size: 32 } },
    /^circuit\.controls 10000000 x circuit\.size 32: step 5 would hold at least 2\.56 GB for the matched controls of a residual circuit/,
  ],
  [
    'quick',
    { patching: { examples: 65536 } },
    /^patching\.examples 65536: step 6 would hold at least [\d.]+ GB for hook_h of \S+'s 65536 test sequences and its resampled copy/,
    [6],
  ],
  [
    'quick',
    { perturb: { examples: 65536 } },
    /^perturb\.examples 65536: step 7 would hold at least [\d.]+ GB for hook_h of \S+'s 65536 sequences and a noise draw there/,
    [7],
  ],
  [
    'quick',
    { temporal: { seqLen: 4096 } },
    /^temporal\.seqLen 4096: step 8 would hold at least 103 GB for the residual influence Jacobian of one sequence/,
  ],
  [
    'quick',
    { temporal: { examples: 1 << 20 } },
    /^temporal\.examples 1048576 x temporal\.seqLen 20: step 8 would hold at least 16\.8 GB for the influence maps/,
  ],
  [
    'quick',
    { dynamics: { examples: 1 << 20 } },
    /^dynamics\.examples 1048576: step 9 would hold at least [\d.]+ GB for the SSM states of \S+'s 1048576 sequences and their PCA/,
  ],
  [
    'quick',
    { repro: { sequences: 1 << 20 } },
    /^repro\.sequences 1048576: step 10 would hold at least 25\.8 GB for the residual streams of \S+'s 2 seeds and a random init/,
  ],
  [
    'quick',
    { repro: { controls: 10_000_000 } },
    /^repro\.controls 10000000 x circuit\.size 8: step 10 would hold at least 1\.28 GB for the located controls/,
  ],
  [
    'quick',
    { transfer: { examples: 1 << 20 } },
    /^transfer\.examples 1048576: step 11 would hold at least 25\.8 GB for the last residuals of the mixture model on 3 x 2 x 1048576 sequences/,
  ],
  [
    'quick',
    { transfer: { controls: 10_000_000 } },
    /^transfer\.controls 10000000 x circuit\.size 8: step 11 would hold at least 640 MB for the matched controls of a circuit of the mixture model \(budget 500 MB/,
    undefined,
    '500 MB',
  ],
  [
    'quick',
    { transfer: { alignSequences: 1 << 20 } },
    /^transfer\.alignSequences 1048576: step 11 would hold at least 15\.0 GB for the aligned last residuals of two models/,
  ],
  [
    'quick',
    { train: { batchSize: 65536 } },
    /^train\.batchSize 65536: step 11 would hold at least [\d.]+ GB for one training batch of the mixture model/,
    [11],
  ],
  [
    'text-quick',
    { copying: { sequences: 1 << 20 } },
    /^copying\.sequences 1048576 x copying\.seqLen 32: step 1 would hold at least 67\.1 GB for the logits of the copying test of brown on repeated tokens/,
  ],
];

test('each estimate of steps 5-11 past the budget is refused naming its field and step', () => {
  for (const [preset, patch, want, steps, small] of ANALYSIS_CASES) {
    const budget = { bytes: small ? 5e8 : 1e9, what: small ?? 'a test budget' };
    const base = withPatch(DEFAULT_CONFIG, PRESETS[preset]);
    checkBudget(base, studyShapes(base), budget);
    const c = withPatch(base, patch);
    assert.throws(() => checkBudget(c, studyShapes(c), budget, steps), want, JSON.stringify(patch));
  }
  // one tensor: the residual influence Jacobian [(L + 1) T 8, T D] of one sequence past a 4 GiB heap, RAM aside
  const heap = { bytes: 1e15, what: 'RAM', tensorBytes: 2 ** 32, tensorWhat: 'the CPU heap' };
  const long = withPatch(quick, { temporal: { seqLen: 8192 } });
  assert.throws(
    () => checkBudget(long, studyShapes(long), heap, [8]),
    /^temporal\.seqLen 8192: step 8 would hold at least 206 GB for the residual influence Jacobian of one sequence of \S+ \(budget 4\.29 GB, the CPU heap\)$/,
  );
});

test("steps 6, 8 and 9's tensor estimates equal the tensors the library makes on a quick model", async () => {
  const dir = await quickRun();
  const config = readJson<RunConfig>(join(dir, 'config.json'));
  const m = loadTrainedModels(dir).find((x) => x.passed && x.task === 'induction')!;
  assert.ok(m, 'a passing induction model in the quick run');
  const model = await loadTrainedModel(dir, m, { backend: new CpuBackend() });
  try {
    const shape = studyShapes(config).find((s) => s.label === m.task)!;
    const est = analysisAllocations(config, shape).filter((a) => a.tensor);
    const one = (step: number, what: RegExp) => {
      const found = est.filter((a) => a.step === step && what.test(a.what));
      assert.is(found.length, 1, `step ${step} ${what}`);
      return found[0].bytes;
    };
    const L = model.config.num_hidden_layers;
    const hookH = `blocks.${L - 1}.mixer.hook_h`;
    const task = getTask(m.task);
    // step 6: the test half's hook_h, cached as steps/step06-patching.ts does
    const { test: half } = splitHalves(task.generate(m.taskOptions as never, new mi.Rng('budget-study'), 2 * config.patching.examples));
    const ids = idsOf(model, half);
    const act = cacheActivations(model, ids, [hookH]).get(hookH)!;
    assert.is(one(6, /^hook_h of /), act.size * 4);
    act.dispose();
    ids.dispose();
    // step 9: hook_h of dynamics.examples sequences, as interp/dynamics.ts stateTrajectories caches it
    const batch = task.generate(m.taskOptions as never, new mi.Rng('budget-dynamics'), config.dynamics.examples);
    const rows = Array.from({ length: batch.shape[0] }, (_, b) =>
      Array.from(batch.inputs.subarray(b * batch.shape[1], (b + 1) * batch.shape[1])),
    );
    const size = mi.tidy(() => mi.noGrad(() => model.runWithCache(rows, [hookH]).cache.get(hookH)!.size));
    assert.is(one(9, /^hook_h of /), size * 4);
    // step 8: one layer's hidden attention alpha [E, T, T] on a temporal.seqLen sequence (float32 at least)
    const seq = Array.from({ length: config.temporal.seqLen }, (_, t) => t % model.config.vocab_size);
    const h = await hiddenAttention(model, seq, 0);
    assert.is(one(8, /^the hidden attention/), h.alpha.length * 4);
  } finally {
    model.dispose();
  }
});

test("step 14's timed training step: a grid past the budget is refused naming its axis; the estimate is at most the measured peak", async () => {
  const budget = { bytes: 1e9, what: 'a test budget' };
  checkBudget(quick, studyShapes(quick), budget, [14]);
  // hidden 2048, 1 layer, length 16, batch 4096: x, delta, z [4096, 16, 4096] alone are 3.2 GB
  const wide = withPatch(quick, { scale: { hidden: [32, 2048], batch: 4096 } });
  assert.throws(
    () => checkBudget(wide, studyShapes(wide), budget, [14]),
    /^scale\.hidden \[32,2048\] x scale\.batch 4096: step 14 would hold at least \S+ GB for the timed training step at hidden 2048, 1 layers, length 16 \(budget 1\.00 GB, a test budget\)$/,
  );
  // a lower bound: on the CPU backend, the training step's measured peak is no smaller (about 5x here:
  // the autograd graph keeps every layer's intermediates, the estimate only the scan's inputs)
  const p = { hidden: 32, layers: 2, seqLen: 64, batch: 8, stateSize: 4, vocab: 64, expand: 2 };
  const c = withPatch(quick, {
    scale: { hidden: [p.hidden], layers: [p.layers], seqLens: [p.seqLen], batch: p.batch },
    train: { stateSize: 4 },
  });
  const [est] = scaleAllocations(c);
  const m = await measure(p, new mi.Rng('budget/scale'), { reps: 1, backend: mi.cpuBackend() });
  const peak = m.peakBytesPerToken * p.batch * p.seqLen;
  assert.ok(est.bytes <= peak, `estimate ${formatBytes(est.bytes)} above the measured peak ${formatBytes(peak)}`);
  assert.ok(est.bytes >= peak / 8, `estimate ${formatBytes(est.bytes)} far below the measured peak ${formatBytes(peak)}`);
});

test('formatBytes: three significant digits in decimal units', () => {
  assert.is(formatBytes(999), '999 B');
  assert.is(formatBytes(1000), '1.00 kB');
  assert.is(formatBytes(12_600_000_000), '12.6 GB');
  assert.is(formatBytes(2.2e12), '2.20 TB');
});

test.run();
