// steps/copying.ts: a language model's copying test. The content range and BOS read from a
// checkpoint's tokenizer and config; the copying gate and claim on planted predictions: a perfect
// copier passes (accuracy 1 against a chance control), a model that does not copy is gated out;
// and studyModels (steps/models.ts) adds repeated-tokens-s<seed> for exactly the language models
// that passed both gates, each page naming the others.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as mi from '../../engine/index.ts';
import { emptyReport } from '../../interp/report/index.ts';
import { NO_LABEL, type TaskBatch } from '../../interp/tasks/index.ts';
import { repeatLayout, type RepeatLayout } from '../../interp/tasks/repeated-tokens.ts';
import { TRAIN_DIR, type TrainedModel } from '../../steps/artefacts.ts';
import { DEFAULT_CONFIG, mergeConfig, QUICK_OVERRIDES } from '../../steps/config.ts';
import {
  checkCopyingConfig,
  copyingClaim,
  copyingGate,
  copyingOptions,
  copyingTable,
  measureModelCopying,
  type CopyingRecord,
} from '../../steps/copying.ts';
import { gateNote, studyModels } from '../../steps/models.ts';
import type { StepContext } from '../../steps/step.ts';

const tmp = mkdtempSync(join(tmpdir(), 'mi-copying-'));
process.once('exit', () => rmSync(tmp, { recursive: true, force: true }));
const config = mergeConfig(DEFAULT_CONFIG, QUICK_OVERRIDES, 'quick');
const ctx = { config, rng: (n: string) => new mi.Rng(`test/${n}`) };

function checkpoint(name: string, cfg: object, tokenizer?: object): string {
  const dir = join(tmp, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify(cfg));
  if (tokenizer) writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tokenizer));
  return dir;
}

test('copyingOptions: content between the special tokens, padded rows left out, BOS from the config or the first special token', () => {
  // the Brown word-level tokenizer: <|endoftext|> <|padding|> <unk> are ids 0-2, special; no bos_token_id
  const words = Object.fromEntries(['<|endoftext|>', '<|padding|>', '<unk>', 'the', ',', '.', 'of', 'and'].map((w, i) => [w, i]));
  const brown = checkpoint(
    'brown',
    { vocab_size: 8, bos_token_id: null },
    { added_tokens: [0, 1, 2].map((id) => ({ id, special: true })), model: { vocab: words } },
  );
  assert.equal(copyingOptions(brown, 32, 1), { vocabSize: 8, seqLen: 32, firstToken: 3, lastToken: 7, bos: 0, varyLength: 1 });
  // GPT-NeoX-like: specials 0 and 1, non-special added tokens above the vocab, embedding rows padded past them
  const neox = checkpoint(
    'neox',
    { vocab_size: 16, bos_token_id: 0 },
    {
      added_tokens: [
        { id: 0, special: true },
        { id: 1, special: true },
        { id: 11, special: false },
      ],
      model: { vocab: Object.fromEntries(Array.from({ length: 9 }, (_, i) => [`t${i}`, i + 2])) },
    },
  );
  assert.equal(copyingOptions(neox, 20, 0), { vocabSize: 16, seqLen: 20, firstToken: 2, lastToken: 11, bos: 0, varyLength: 0 });
  // no tokenizer (the tiny fixture): the config's special ids
  const bare = checkpoint('bare', { vocab_size: 64, bos_token_id: 0, eos_token_id: 0, pad_token_id: 0 });
  assert.equal(copyingOptions(bare, 20, 1), { vocabSize: 64, seqLen: 20, firstToken: 1, lastToken: 63, bos: 0, varyLength: 1 });
  const none = checkpoint('none', { vocab_size: 10 });
  assert.equal(copyingOptions(none, 20, 1).bos, -1, 'no BOS when the checkpoint names none');
  assert.throws(() => checkCopyingConfig({ ...config.copying, gateAlpha: 1 }), /copying\.gateAlpha must be in \(0, 1\), got 1/);
  assert.throws(() => checkCopyingConfig({ ...config.copying, sequences: 1 }), /copying\.sequences must be an integer >= 2, got 1/);
});

/** A perfect copier (the planted truth: copies the token L back in the second copy, else guesses token 1). */
function oracle(): (batch: TaskBatch) => Int32Array {
  let layouts: RepeatLayout[] = [];
  return (batch) => {
    const [B, T] = batch.shape;
    if (batch.labels.sourcePos.some((v) => v !== NO_LABEL)) layouts = Array.from({ length: B }, (_, b) => repeatLayout(batch, b));
    const out = new Int32Array(B * T).fill(1);
    for (let b = 0; b < B; b++)
      for (let t = layouts[b].first + layouts[b].length; t < T - 1; t++) out[b * T + t] = batch.inputs[b * T + t + 1 - layouts[b].length];
    return out;
  };
}

const opts = { vocabSize: 12, seqLen: 21, firstToken: 1, lastToken: 10, bos: 0, varyLength: 1 };

test('the copying gate and claim: a perfect copier passes against a chance control; a non-copier is gated out', async () => {
  const good = await measureModelCopying(ctx, oracle(), opts, 'oracle');
  assert.is(good.accuracy, 1);
  assert.ok(Math.abs(good.control - 0.1) < 0.07, `control near chance 1/10: ${good.control}`);
  assert.ok(good.p < 1e-3 && good.passed, `p ${good.p}`);
  assert.is(good.chance, 0.1);
  assert.is(good.perSequence.repeat.length, config.copying.sequences);
  const claim = copyingClaim(ctx, 'brown', 0, good);
  assert.is(claim.estimate, 1);
  assert.ok(Math.abs(claim.controlEstimate! - good.control) < 1e-12, 'the control beside the estimate');
  assert.is(claim.p, good.p);
  assert.ok(claim.effect && claim.status === 'pending' && !claim.supported, 'pending: the run decides support');
  // a constant guess copies nothing: no difference, gated out, effect condition not met
  const flat = await measureModelCopying(ctx, (b) => new Int32Array(b.inputs.length).fill(1), opts, 'flat');
  assert.ok(Math.abs(flat.accuracy - flat.control) < 0.1 && !flat.passed, `flat ${flat.accuracy} vs ${flat.control}, p ${flat.p}`);
  assert.not.ok(copyingClaim(ctx, 'brown', 1, flat).effect);
  // the gate needs both: above the control, and p below alpha
  assert.ok(copyingGate(0.5, 0.1, 0.01, 0.05));
  assert.not.ok(copyingGate(0.5, 0.1, 0.05, 0.05));
  assert.not.ok(copyingGate(0.1, 0.1, 0.001, 0.05));
  const table = copyingTable([
    { task: 'brown', seed: 0, r: good },
    { task: 'brown', seed: 1, r: flat },
  ]);
  assert.equal(
    table.rows.map((r) => r[r.length - 1]),
    ['passed: studied as repeated-tokens-s0', 'not studied'],
  );
});

test('studyModels: a language model that passed both gates is also studied on repeated-tokens, the others are named', async () => {
  const good = await measureModelCopying(ctx, oracle(), opts, 'oracle');
  const flat = await measureModelCopying(ctx, (b) => new Int32Array(b.inputs.length).fill(1), opts, 'flat');
  const lm = (seed: number, copying: CopyingRecord, passed = true): TrainedModel => ({
    task: 'brown',
    seed,
    dir: join('models', `brown-s${seed}`),
    taskOptions: { vocabSize: 12, seqLen: 21 },
    chance: 1 / 12,
    accuracy: 0.3,
    lengthAccuracy: [],
    baselines: [],
    gate: 0.95,
    passed,
    stepsTrained: 10,
    finalLoss: 1,
    trainSeconds: 1,
    perplexity: 5,
    perplexityBaselines: [{ name: 'bigram', perplexity: 6 }],
    copying,
  });
  const runDir = join(tmp, 'run');
  mkdirSync(join(runDir, TRAIN_DIR), { recursive: true });
  writeFileSync(join(runDir, TRAIN_DIR, 'models.json'), JSON.stringify([lm(0, good), lm(1, flat), lm(2, good, false)]));
  const sctx = {
    config,
    runDir,
    backend: mi.cpuBackend(),
    input: () => join(runDir, TRAIN_DIR),
    report: () => emptyReport(2, 'test'),
  } as unknown as StepContext;
  const study = studyModels(sctx);
  assert.equal(
    study.map((m) => [m.label, m.task, m.seed]),
    [
      ['brown-s0', 'brown', 0],
      ['brown-s1', 'brown', 1],
      ['repeated-tokens-s0', 'repeated-tokens', 0],
    ],
  );
  assert.equal(study[2].taskOptions, good.taskOptions, 'studied on the options step 1 measured it on');
  const note = gateNote(sctx)!;
  assert.match(note, /Not analysed on repeated-tokens \(below the copying gate[^)]*\): repeated-tokens-s1 \(brown-s1's copying accuracy/);
  assert.not.match(note, /repeated-tokens-s2/, 'a model below the learning gate is named by that gate only');
  assert.match(note, /brown-s2 \(held-out perplexity/);
});

test.run();
