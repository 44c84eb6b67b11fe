// The run configuration: every default written out, a --quick preset for tests, and validation
// that names the field at fault. A config file only needs the fields it changes.

export interface RunConfig {
  seed: number;
  /** permutations (or sign flips) per permutation test in every step: p-values reach 1/(n+1), which
   *  has to survive Holm across all of a run's claims (step 13) with room to spare: family size x
   *  1/(n+1) <= 0.05/10 (interp/claims.ts floorSurvives; step 13 names any claim whose floor fails it) */
  permutations: number;
  /** a claim of steps 3-9 is made per task from one value per gate-passing seed (the seed is the
   *  unit, interp/seeds.ts); with fewer seeds than this the task's results are shown but not tested */
  claimSeeds: number;
  backend: 'auto' | 'cpu' | 'webgpu';
  /** a Hugging Face Mamba checkpoint directory instead of the toy models ('' = toy models) */
  model: string;
  /**
   * `--text FILE` (with --model): files: the text files (absolute paths, globs expanded), streamed
   * through the checkpoint's tokenizer into windows of train.seqLen tokens (interp/text/stream.ts);
   * windows: how many of them a seeded reservoir keeps, the pool the task draws its sequences from
   */
  text: { files: string[]; windows: number };
  tasks: string[];
  train: {
    seeds: number;
    hiddenSize: number;
    layers: number;
    stateSize: number;
    expand: number;
    convKernel: number;
    /** the training length of every task whose taskOptions give no seqLen of their own */
    seqLen: number;
    batchSize: number;
    /** the most optimiser steps per model (the learning-rate schedule spans them); fewer when a model reaches stopAccuracy */
    steps: number;
    lr: number;
    warmupSteps: number;
    weightDecay: number;
    clipNorm: number;
    /** held-out accuracy is checked every evalEvery steps (curriculum moves and early stopping) */
    evalEvery: number;
    /** held-out batches (of batchSize sequences) per check, and per length in the final measurement */
    evalBatches: number;
    /** the learning gate: held-out accuracy at the training length a model needs for steps 2-11 to analyse it */
    gate: number;
    /** accuracy on the checks' own held-out data at which a curriculum stage is passed, or training stops
     *  at the last stage; above the gate, so that the final measurement (on other sequences) clears it */
    stopAccuracy: number;
    /** longer lengths the models are measured at (length generalisation) */
    lengthGeneralisation: number[];
    /** worker threads training models in parallel (CPU backend; 1 = in the main thread) */
    workers: number;
    /** per task (registry name): generator options; seqLen defaults to train.seqLen */
    taskOptions: {
      induction: Record<string, number>;
      'selective-copying': Record<string, number>;
      mqar: Record<string, number>;
      brown: Record<string, number>;
    };
    /** per task: curriculum stages before the target options, easiest first, each a partial set of
     *  its options (e.g. { seqLen: 64, numTokens: 4 }); [] trains on the target from the start */
    curriculum: {
      induction: Record<string, number>[];
      'selective-copying': Record<string, number>[];
      mqar: Record<string, number>[];
      brown: Record<string, number>[];
    };
  };
  /** stateBatches: hook_h (E*N channels a row) is collected for the first stateBatches batches only */
  collect: { batches: number; batchSize: number; hooks: string[]; states: boolean; stateBatches: number; shardTokens: number };
  /**
   * seeds: SAEs for the first `seeds` models of each task on `hooks` (the claims); evalSequences:
   * fresh sequences for the CE-loss and KL scores; sweepHooks: SAEs of kind sweepKind on these hooks
   * too, for the first seed of each task only (a table and figure beside the claims, not claims)
   */
  sae: {
    kinds: string[];
    latentsMultiplier: number;
    k: number;
    l1: number;
    steps: number;
    batchSize: number;
    lr: number;
    hooks: string[];
    seeds: number;
    evalSequences: number;
    sweepHooks: string[];
    sweepKind: string;
  };
  /** hooks: activations probed ({i} every layer, {last} the last); alpha: ElasticNet mixing on SAE latents */
  probes: { folds: number; maxSamples: number; hooks: string[]; nLambda: number; alpha: number; bootstrap: number };
  /** controls: matched control sets per circuit (interp/controls.ts); strata: activation-variance strata the channel controls are drawn by */
  circuit: { size: number; controls: number; strata: number };
  /**
   * examples: sequences of each half (circuits are selected on one half, tested on the other);
   * controls: the matched controls (of the circuit's) each claimed effect (mean ablation, clean
   * patch) is ranked among; tableControls: those for zero and resample ablation, which are table
   * rows and not claims (time); seeds: models
   * patched per task (the first seeds); keyClaim: the run's key claim, named before the run (task,
   * the circuit's hook kind 'resid' | 'state', its selection source, the effect)
   */
  patching: {
    examples: number;
    bootstrap: number;
    permutations: number;
    controls: number;
    tableControls: number;
    seeds: number;
    keyClaim: { task: string; hook: string; source: string; effect: string };
  };
  /** step 7: noise scales (in stds), noise draws per curve, held-out sequences (of the test half), matched controls ranked at the largest scale (the first `directions` also drawn as curves) */
  perturb: { scales: number[]; directions: number; examples: number; controls: number };
  /** seeds: models per task (the first seeds); examples: task and as many random sequences per model, whose
   *  two-sample permutation test cannot go below 2 / C(2 examples, examples) (8: 1.6e-4; 4 would be 0.029) */
  temporal: { seqLen: number; examples: number; seeds: number };
  /** step 9: initSeeds = fresh initialisations of each model's shape whose time constants are the baseline */
  dynamics: { examples: number; initSeeds: number };
  /** step 10: threshold: a latent counts as shared when its max activation correlation with the other seed's
   *  latents reaches it (also the decoder-cosine threshold of the basis-dependent table); shifts:
   *  draws of the circular-shift null per seed pair; sequences: held-out sequences of the comparison;
   *  controls: matched control sets per ordered seed pair for the circuit located in the other seed's
   *  model and patched there (its claim's p is the largest pair's rank p, so its floor is 1/(controls+1)) */
  repro: { threshold: number; bootstrap: number; sequences: number; shifts: number; controls: number };
  /**
   * step 11. mixture: the component tasks of the one model trained on a mixture ([]: the tasks whose
   * step-1 models passed the gate), each with its step-1 taskOptions; steps: its most training steps
   * (early stop as in step 1); examples: sequences of each component in each half (selection, test);
   * controls: matched control sets each reuse claim ranks among (its floor is 1/(controls+1); the
   * diagonal, each task's own circuit or latents, ranks among circuit.controls);
   * latents: SAE latents ablated per feature set; maxRows: probe rows per task (class-balanced);
   * alignSequences: shared input sequences of the cross-model alignment (half from each task, half
   * of them for the fit, half held out); alignDraws: random rotations and re-paired fits beside it
   */
  transfer: {
    mixture: string[];
    steps: number;
    examples: number;
    controls: number;
    latents: number;
    bootstrap: number;
    maxRows: number;
    alignSequences: number;
    alignDraws: number;
  };
  /**
   * The copying test of every language model of the run (a text task's step-1 models, a --model
   * checkpoint): repeated random tokens over the model's vocabulary (interp/tasks/repeated-tokens.ts,
   * steps/copying.ts) at seqLen; varyLength 1: the copied run's length L varies per sequence (in
   * [ceil(Lmax/2), Lmax]), so that step 8 finds answers at several distances. Step 1 measures each
   * language model on `sequences` sequences and their fresh-half controls; a model whose copying
   * accuracy is above the control's by a paired test with p < gateAlpha is also studied on
   * repeated-tokens by steps 2-10.
   */
  copying: { seqLen: number; sequences: number; varyLength: number; gateAlpha: number };
  report: { title: string };
  /** step 14: the shapes timed, varied one axis at a time around the first entry of each list */
  scale: { hidden: number[]; layers: number[]; seqLens: number[]; batch: number; reps: number };
}

export const DEFAULT_CONFIG: RunConfig = {
  seed: 1234,
  // 1/(n+1) = 1e-5: survives Holm with the 10x margin for up to 500 claims (the default run has about 100)
  permutations: 99999,
  claimSeeds: 3,
  backend: 'auto',
  model: '',
  text: { files: [], windows: 4096 },
  tasks: ['induction', 'selective-copying', 'mqar'],
  train: {
    seeds: 3,
    hiddenSize: 64,
    layers: 2,
    stateSize: 16,
    expand: 2,
    convKernel: 4,
    seqLen: 256,
    batchSize: 16,
    steps: 800,
    // 3e-3, measured 2026-12-02 (3 seeds each, this config otherwise): selective copying of 3 tokens
    // passes the gate for all three seeds in 325-425 steps (at 1e-2 one of three in 800 steps; the
    // other two stay near chance even after 2400); induction in 100-125 steps (as at 1e-2); MQAR
    // reaches 0.75 on its 2-pair stage, against 0.04-0.4 at 1e-2
    lr: 3e-3,
    warmupSteps: 20,
    weightDecay: 0.01,
    clipNorm: 1,
    evalEvery: 25,
    evalBatches: 4,
    gate: 0.95,
    stopAccuracy: 0.98,
    lengthGeneralisation: [512, 1024, 2048, 4096],
    workers: 2,
    // Measured on this 2-core CPU (2026-12-02): induction reaches the gate at the size
    // (vocabulary 16, length 256) in about 100 steps with a curriculum from 64 (at lr 1e-2; at 3e-3
    // measured at length 64 only). At lr 3e-3: selective
    // copying of 16 tokens at length 256 does not within the step-1 budget: through a curriculum
    // (4 tokens at 64, 8 at 128) it passes the first stage after about 1000 steps and stands at 0.50
    // on the second after 1600 (about 160 s a model here). MQAR with 8 pairs over vocabulary 64
    // stays at 0.75 on its 2-pair stage for 1300 steps. So selective copying trains at 3 tokens,
    // where every seed passes in budget, and MQAR at the size through its curriculum, so
    // its page shows how far it gets (step 1 states each such model's outlook).
    taskOptions: {
      // trained and analysed at length 64: with a curriculum (64, then 256) all three seeds pass the
      // gate at 256 and step 5's attribution now runs in chunks that fit the heap, but analysing at
      // 256 costs about 4x in steps 2 and 5-11, past the default run's 20 minutes here; `--config` with
      // { "train": { "taskOptions": { "induction": { "seqLen": 256 } }, "curriculum": { "induction": [{ "seqLen": 64 }] } } } trains it so
      induction: { vocabSize: 16, occurrences: 4, seqLen: 64 },
      'selective-copying': { vocabSize: 16, numTokens: 3, seqLen: 64 },
      mqar: { vocabSize: 64, numPairs: 8, seqLen: 64 },
      // language modelling on the Brown corpus (interp/tasks/brown.ts), trained by --preset text
      brown: { vocabSize: 3000, seqLen: 64 },
    },
    curriculum: {
      induction: [],
      'selective-copying': [],
      mqar: [{ numPairs: 2 }, { numPairs: 4 }],
      brown: [],
    },
  },
  collect: {
    batches: 8,
    batchSize: 32,
    hooks: ['blocks.{i}.hook_resid_post', 'blocks.{i}.mixer.hook_ssm_out'],
    states: true,
    stateBatches: 1,
    shardTokens: 65536,
  },
  sae: {
    kinds: ['relu', 'topk'],
    latentsMultiplier: 4,
    k: 8,
    l1: 1,
    steps: 300,
    batchSize: 256,
    lr: 1e-3,
    hooks: ['blocks.{last}.hook_resid_post'],
    seeds: 3,
    evalSequences: 128,
    // every layer's residual stream and the last layer's SSM output, first seed of each task, TopK
    // only: 2 extra SAEs a task, about +90 s on the step (74 s before). The SSM output is 2x wider
    // (d_inner): its SAE costs ~45 s against ~10 s for a residual one, so every layer's SSM output
    // would add ~200 s, and both kinds on every hook and seed about 5x the step
    sweepHooks: ['blocks.{i}.hook_resid_post', 'blocks.{last}.mixer.hook_ssm_out'],
    sweepKind: 'topk',
  },
  probes: { folds: 5, maxSamples: 1000, hooks: ['blocks.{i}.hook_resid_post'], nLambda: 12, alpha: 0.5, bootstrap: 1000 },
  circuit: { size: 16, controls: 100, strata: 8 },
  patching: {
    examples: 64,
    bootstrap: 1000,
    permutations: 99999,
    controls: 100,
    tableControls: 20,
    seeds: 3,
    keyClaim: { task: 'induction', hook: 'resid', source: 'attribution', effect: 'clean patch' },
  },
  // 100 matched controls per seed, as step 6 (the least): a claim ranks each of 3 seeds
  // among them and combines the ranks (floor 1/101^3). The 32 sequences stay: at 16 the per-seed KL
  // is noisy enough to move the channel claim's p from 0.024 to 0.56 on the default run (measured
  // 2026-12-02); 50 controls would halve the step's time (80 s a model at 100 before the seed change)
  perturb: { scales: [0, 0.5, 1, 2, 4], directions: 3, examples: 32, controls: 100 },
  temporal: { seqLen: 32, examples: 8, seeds: 3 },
  dynamics: { examples: 16, initSeeds: 4 },
  // controls: the located-circuit claim takes the largest p over seed pairs (intersection-union),
  // which sits no lower than one pair's floor 1/(controls+1); 19,999 (5e-5) survives Holm with the
  // tenfold margin in a family of up to 100 claims (about 58 in the default run, 90 in the quick)
  repro: { threshold: 0.7, bootstrap: 1000, sequences: 64, shifts: 20, controls: 19999 },
  // 1500 steps: the induction + selective-copying mixture (64 hidden) stops at 0.98 after about 775
  // (35 s here, measured 2026-12-02); at 1000 the shorter schedule left selective copying at 0.95.
  // 19999 controls: the reuse claims are ranks on one model, so the floor is 1/(controls+1) = 5e-5,
  // which a family of up to 100 claims survives with step 13's tenfold margin; ranking costs a pass
  // of the model's tail over the answer cells per control (about 0.15 ms in chunks of 64)
  transfer: {
    mixture: [],
    steps: 1500,
    examples: 64,
    controls: 19999,
    latents: 8,
    bootstrap: 1000,
    maxRows: 1000,
    alignSequences: 128,
    alignDraws: 20,
  },
  // 64 sequences: the paired test's floor (1/65536 with the quick preset's flips) is far below gateAlpha
  copying: { seqLen: 64, sequences: 64, varyLength: 1, gateAlpha: 0.05 },
  report: { title: 'mamba-interp run' },
  scale: { hidden: [64, 32, 128, 256], layers: [2, 1, 4], seqLens: [64, 32, 128], batch: 4, reps: 3 },
};

/** Small sizes so the whole pipeline runs in a test. */
export const QUICK_OVERRIDES: DeepPartial<RunConfig> = {
  // 2^16 - 1: sign-flip tests of up to 16 values (patching, perturbation, transfer examples) enumerate
  // every flip exactly (floor 1/65536), and random ones reach 1/65536, which the quick run's ~90
  // claims survive Holm with (a floor of 1/201 gave Holm 0.43 at best)
  permutations: 65535,
  // two seeds a task, so that the claims over seeds (claimSeeds) are made and tested in the quick run
  claimSeeds: 2,
  train: {
    seeds: 2,
    hiddenSize: 32,
    layers: 2,
    stateSize: 8,
    seqLen: 32,
    batchSize: 16,
    // at most: induction reaches stopAccuracy in about 40 steps, selective copying in about 260
    steps: 300,
    lr: 1e-2,
    warmupSteps: 10,
    evalEvery: 20,
    // 2 x 16 sequences: with 1, a check of MQAR's 32 scored positions stopped one model at 1.000 whose held-out accuracy was 0.81
    evalBatches: 2,
    lengthGeneralisation: [64],
    taskOptions: {
      induction: { vocabSize: 8, occurrences: 6, seqLen: 32 },
      'selective-copying': { vocabSize: 8, numTokens: 2, seqLen: 32 },
      mqar: { vocabSize: 9, numPairs: 2, seqLen: 32 },
      brown: { vocabSize: 1000, seqLen: 32 },
    },
    curriculum: { induction: [], 'selective-copying': [], mqar: [], brown: [] },
  },
  collect: { batches: 2, batchSize: 16 },
  // the quick run's sweep covers every layer's SSM output too (its SAEs are small)
  sae: {
    steps: 100,
    batchSize: 128,
    latentsMultiplier: 2,
    evalSequences: 32,
    seeds: 2,
    sweepHooks: ['blocks.{i}.hook_resid_post', 'blocks.{i}.mixer.hook_ssm_out'],
  },
  probes: { folds: 3, maxSamples: 400, nLambda: 10, bootstrap: 200, hooks: ['blocks.{last}.hook_resid_post'] },
  // 8 of the quick models' 32 residual channels, so matched controls have 24 others to draw from
  circuit: { controls: 19, size: 8 },
  patching: { examples: 16, bootstrap: 200, permutations: 65535, controls: 19, tableControls: 9, seeds: 2 },
  perturb: { scales: [0, 1, 4], directions: 3, examples: 16, controls: 19 },
  // length 20: at 13 (the least for 6 triggers) the triggers sit every other position, every source is
  // the answer's previous token and step 8's source test has no matched control
  temporal: { seqLen: 20, examples: 2, seeds: 2 },
  dynamics: { examples: 4, initSeeds: 2 },
  repro: { bootstrap: 200, sequences: 16, shifts: 10 },
  copying: { seqLen: 32, sequences: 32 },
  transfer: { steps: 300, examples: 16, controls: 999, latents: 4, bootstrap: 200, maxRows: 200, alignSequences: 64, alignDraws: 5 },
  scale: { hidden: [32, 16, 64], layers: [1, 2], seqLens: [16, 32], batch: 2, reps: 1 },
};

/**
 * The papers' sizes, for a GPU (`--preset paper`): selective copying as in the Mamba paper (Gu &
 * Dao 2023, section 4.1.1: 16 data tokens, vocabulary 16, length 4096), induction as there
 * (vocabulary 16, training length 256; the paper tests up to 2^20, this measures up to 2^16 = 256x,
 * where one sequence's activations still fit a GPU's memory at a time), and MQAR at one point of
 * Zoology's sweep (Arora et al. 2023: vocabulary 8192; length 256 with 16 key-value pairs). Models
 * as in the Mamba paper's synthetic tasks: 2 layers, hidden 64. Not measured here (no GPU on the
 * machine this was written on); the step budget is a guess to be checked on one.
 */
export const PAPER_OVERRIDES: DeepPartial<RunConfig> = {
  train: {
    seqLen: 256,
    batchSize: 32,
    steps: 20000,
    lr: 1e-3,
    warmupSteps: 200,
    evalEvery: 250,
    evalBatches: 4,
    lengthGeneralisation: [512, 1024, 4096, 16384, 65536],
    workers: 1,
    taskOptions: {
      induction: { vocabSize: 16, occurrences: 4, seqLen: 256 },
      'selective-copying': { vocabSize: 16, numTokens: 16, seqLen: 4096 },
      mqar: { vocabSize: 8192, numPairs: 16, seqLen: 256 },
    },
    curriculum: {
      induction: [],
      'selective-copying': [{ seqLen: 256 }, { seqLen: 1024 }],
      mqar: [{ numPairs: 4 }, { numPairs: 8 }],
    },
  },
};

/**
 * Real text (`--preset text`): a small Mamba language model trained on the Brown corpus (word-level
 * vocabulary of 3000 tokens from the training documents; interp/tasks/brown.ts), gated on held-out
 * perplexity below the unigram and bigram baselines', then steps 2-14 on it with text-native
 * variables (part of speech, position in sentence, repeats). Sizes measured on the 2-core CPU (see
 * README "Real text").
 */
export const TEXT_OVERRIDES: DeepPartial<RunConfig> = {
  tasks: ['brown'],
  // two seeds (trained side by side in the two worker threads) and claims over them, as in the quick preset
  claimSeeds: 2,
  train: {
    seeds: 2,
    hiddenSize: 128,
    layers: 2,
    stateSize: 16,
    seqLen: 64,
    batchSize: 16,
    steps: 800,
    lr: 1e-2,
    warmupSteps: 20,
    // accuracy checks gate nothing for a language model (it never reaches stopAccuracy): few of them
    evalEvery: 200,
    evalBatches: 4,
    lengthGeneralisation: [256],
    taskOptions: { brown: { vocabSize: 3000, seqLen: 64 } },
  },
  sae: { seeds: 2 },
  probes: { hooks: ['blocks.{i}.hook_resid_post'] },
  // the key claim of a text run is about the language model's copying (repeated random tokens)
  patching: { seeds: 2, keyClaim: { task: 'repeated-tokens', hook: 'resid', source: 'attribution', effect: 'clean patch' } },
  temporal: { seeds: 2 },
  report: { title: 'mamba-interp run: a Mamba language model on the Brown corpus' },
};

/** `--preset text --quick`: the text preset at test size (a model that still beats the bigram). */
export const TEXT_QUICK_OVERRIDES: DeepPartial<RunConfig> = {
  ...QUICK_OVERRIDES,
  tasks: ['brown'],
  train: {
    ...QUICK_OVERRIDES.train,
    hiddenSize: 64,
    seqLen: 48,
    steps: 500,
    lr: 1e-2,
    evalEvery: 250,
    lengthGeneralisation: [],
    taskOptions: { ...QUICK_OVERRIDES.train?.taskOptions, brown: { vocabSize: 500, seqLen: 48 } },
  },
  probes: { ...QUICK_OVERRIDES.probes, hooks: ['blocks.{i}.hook_resid_post'] },
  patching: {
    ...QUICK_OVERRIDES.patching,
    keyClaim: { task: 'repeated-tokens', hook: 'resid', source: 'attribution', effect: 'clean patch' },
  },
  report: { title: 'mamba-interp quick run: a Mamba language model on the Brown corpus' },
};

/** The presets `steps/run.ts --preset NAME` applies before a --config file (`--preset X --quick`: X-quick). */
export const PRESETS: Record<string, DeepPartial<RunConfig>> = {
  quick: QUICK_OVERRIDES,
  paper: PAPER_OVERRIDES,
  text: TEXT_OVERRIDES,
  'text-quick': TEXT_QUICK_OVERRIDES,
};

export type DeepPartial<T> = { [K in keyof T]?: T[K] extends readonly unknown[] ? T[K] : T[K] extends object ? DeepPartial<T[K]> : T[K] };

function typeName(v: unknown): string {
  return Array.isArray(v) ? 'array' : v === null ? 'null' : typeof v;
}

/**
 * Merges `patch` into `base`, checking every field against the type of its default: an unknown
 * field or a value of the wrong type is an error naming the field (e.g. "train.steps").
 */
export function mergeConfig<T>(base: T, patch: unknown, source: string, path = ''): T {
  if (patch === undefined) return base;
  if (typeName(patch) !== 'object') throw new Error(`${source}: ${path || 'config'} must be an object, got ${typeName(patch)}`);
  const out = structuredClone(base) as Record<string, unknown>;
  for (const [key, value] of Object.entries(patch as Record<string, unknown>)) {
    const field = path ? `${path}.${key}` : key;
    if (!(key in out)) throw new Error(`${source}: unknown config field "${field}"`);
    const def = out[key];
    if (typeName(def) === 'object') {
      out[key] = mergeConfig(def, value, source, field);
      continue;
    }
    if (typeName(value) !== typeName(def)) {
      throw new Error(`${source}: config field "${field}" must be ${typeName(def)}, got ${typeName(value)} (${JSON.stringify(value)})`);
    }
    if (Array.isArray(def) && def.length && Array.isArray(value)) {
      for (const [i, item] of value.entries()) {
        if (typeName(item) !== typeName(def[0]))
          throw new Error(`${source}: config field "${field}[${i}]" must be ${typeName(def[0])}, got ${typeName(item)}`);
      }
    }
    out[key] = value;
  }
  return out as T;
}

/**
 * The model shape and optimiser settings of config.train, as interp/train-task.ts takes them (the
 * fields every model a run trains shares: step 1's task models and step 11's mixture model).
 */
export function trainSettings(t: RunConfig['train']) {
  return {
    model: { hiddenSize: t.hiddenSize, layers: t.layers, stateSize: t.stateSize, expand: t.expand, convKernel: t.convKernel },
    batchSize: t.batchSize,
    lr: t.lr,
    warmupSteps: t.warmupSteps,
    weightDecay: t.weightDecay,
    clipNorm: t.clipNorm,
    evalEvery: t.evalEvery,
    stopAccuracy: t.stopAccuracy,
    evalBatches: t.evalBatches,
  };
}

/** Upper bound of permutation and bootstrap counts: 10^7 draws already put a floor of 1e-7 under p. */
export const MAX_DRAWS = 10_000_000;

/**
 * Ranges and cross-field checks of a merged config, before anything is read or written: each
 * violation is one line naming the field (mergeConfig has checked the types). `known` lists the
 * task names a run may train (the task registry).
 */
export function checkConfigRanges(c: RunConfig, known: readonly string[]): void {
  const bad = (field: string, want: string, got: unknown) => {
    throw new Error(`config field "${field}" must be ${want}, got ${JSON.stringify(got)}`);
  };
  const int = (field: string, v: number, min: number, max = Number.MAX_SAFE_INTEGER) => {
    if (!Number.isInteger(v) || v < min || v > max) bad(field, `an integer in [${min}, ${max}]`, v);
  };
  const real = (field: string, v: number, lo: number, hi: number) => {
    if (!Number.isFinite(v) || v < lo || v > hi) bad(field, `a number in [${lo}, ${hi}]`, v);
  };
  int('seed', c.seed, 0);
  int('permutations', c.permutations, 1, MAX_DRAWS);
  int('claimSeeds', c.claimSeeds, 1);
  if (!c.model) {
    if (!c.tasks.length) bad('tasks', 'a non-empty list of tasks', c.tasks);
    for (const t of c.tasks) if (!known.includes(t)) bad('tasks', `tasks among ${known.join(', ')}`, t);
  }
  const t = c.train;
  int('train.seeds', t.seeds, 1, 1000);
  int('train.hiddenSize', t.hiddenSize, 1, 65536);
  int('train.layers', t.layers, 1, 1024);
  int('train.stateSize', t.stateSize, 1, 4096);
  int('train.expand', t.expand, 1, 64);
  int('train.convKernel', t.convKernel, 1, 64);
  int('train.seqLen', t.seqLen, 2, 1 << 20);
  int('train.batchSize', t.batchSize, 1, 1 << 16);
  int('train.steps', t.steps, 1);
  int('train.warmupSteps', t.warmupSteps, 0);
  int('train.evalEvery', t.evalEvery, 0);
  int('train.evalBatches', t.evalBatches, 1);
  int('train.workers', t.workers, 1, 256);
  real('train.lr', t.lr, 0, 10);
  real('train.weightDecay', t.weightDecay, 0, 10);
  real('train.clipNorm', t.clipNorm, 0, Number.MAX_VALUE);
  real('train.gate', t.gate, 0, 1);
  real('train.stopAccuracy', t.stopAccuracy, 0, 1);
  for (const L of t.lengthGeneralisation) int('train.lengthGeneralisation', L, 2, 1 << 20);
  int('collect.batches', c.collect.batches, 1, 1 << 16);
  int('collect.batchSize', c.collect.batchSize, 1, 1 << 16);
  int('text.windows', c.text.windows, 1, 1 << 24);
  for (const k of c.sae.kinds) if (!['relu', 'topk'].includes(k)) bad('sae.kinds', 'kinds among relu, topk', k);
  int('sae.steps', c.sae.steps, 1);
  int('sae.batchSize', c.sae.batchSize, 1, 1 << 20);
  int('sae.seeds', c.sae.seeds, 1, 1000);
  int('patching.permutations', c.patching.permutations, 1, MAX_DRAWS);
  int('patching.bootstrap', c.patching.bootstrap, 1, MAX_DRAWS);
  int('patching.controls', c.patching.controls, 1, MAX_DRAWS);
  int('circuit.controls', c.circuit.controls, 1, MAX_DRAWS);
  int('repro.controls', c.repro.controls, 1, MAX_DRAWS);
  int('transfer.controls', c.transfer.controls, 1, MAX_DRAWS);
  int('transfer.bootstrap', c.transfer.bootstrap, 1, MAX_DRAWS);
  // the other draw counts: capped only (0 as before), each a loop of model passes or resamples
  int('patching.tableControls', c.patching.tableControls, 0, MAX_DRAWS);
  int('perturb.controls', c.perturb.controls, 0, MAX_DRAWS);
  int('probes.bootstrap', c.probes.bootstrap, 0, MAX_DRAWS);
  int('repro.bootstrap', c.repro.bootstrap, 0, MAX_DRAWS);
  int('repro.shifts', c.repro.shifts, 0, MAX_DRAWS);
  int('transfer.alignDraws', c.transfer.alignDraws, 0, MAX_DRAWS);
  // the remaining sizes and rates of steps 2-14: each is a count, a length or a fraction that a step
  // would otherwise meet only after the steps before it ran (and some, like temporal.seqLen, set an
  // amount of work that grows with their square)
  int('collect.stateBatches', c.collect.stateBatches, 0, 1 << 16);
  int('collect.shardTokens', c.collect.shardTokens, 1, 1 << 24);
  int('sae.latentsMultiplier', c.sae.latentsMultiplier, 1, 1024);
  int('sae.k', c.sae.k, 1, 1 << 20);
  real('sae.l1', c.sae.l1, 0, 1e6);
  real('sae.lr', c.sae.lr, Number.MIN_VALUE, 10);
  int('sae.evalSequences', c.sae.evalSequences, 1, 1 << 20);
  int('probes.folds', c.probes.folds, 2, 100);
  int('probes.maxSamples', c.probes.maxSamples, 2, 1 << 24);
  int('probes.nLambda', c.probes.nLambda, 1, 1000);
  real('probes.alpha', c.probes.alpha, 0, 1);
  int('circuit.size', c.circuit.size, 1, 1 << 20);
  int('circuit.strata', c.circuit.strata, 1, 1 << 16);
  int('patching.examples', c.patching.examples, 1, 1 << 20);
  int('patching.seeds', c.patching.seeds, 1, 1000);
  int('perturb.directions', c.perturb.directions, 1, 1 << 16);
  int('perturb.examples', c.perturb.examples, 1, 1 << 20);
  int('temporal.seqLen', c.temporal.seqLen, 2, 1 << 16);
  int('temporal.examples', c.temporal.examples, 1, 1 << 20);
  int('temporal.seeds', c.temporal.seeds, 1, 1000);
  int('dynamics.examples', c.dynamics.examples, 1, 1 << 20);
  int('dynamics.initSeeds', c.dynamics.initSeeds, 1, 1000);
  real('repro.threshold', c.repro.threshold, 0, 1);
  int('repro.sequences', c.repro.sequences, 1, 1 << 20);
  int('transfer.steps', c.transfer.steps, 1);
  int('transfer.examples', c.transfer.examples, 1, 1 << 20);
  int('transfer.latents', c.transfer.latents, 1, 1 << 20);
  int('transfer.maxRows', c.transfer.maxRows, 1, 1 << 24);
  int('transfer.alignSequences', c.transfer.alignSequences, 1, 1 << 20);
  int('copying.seqLen', c.copying.seqLen, 2, 1 << 20);
  int('copying.sequences', c.copying.sequences, 1, 1 << 20);
  int('copying.varyLength', c.copying.varyLength, 0, 1);
  real('copying.gateAlpha', c.copying.gateAlpha, Number.MIN_VALUE, 1);
  for (const [field, list, max] of [
    ['scale.hidden', c.scale.hidden, 65536],
    ['scale.layers', c.scale.layers, 1024],
    ['scale.seqLens', c.scale.seqLens, 1 << 20],
  ] as const) {
    if (!list.length) bad(field, 'a non-empty list', list);
    for (const v of list) int(field, v, field === 'scale.seqLens' ? 2 : 1, max);
  }
  int('scale.batch', c.scale.batch, 1, 1 << 16);
  int('scale.reps', c.scale.reps, 1, 1000);
}
