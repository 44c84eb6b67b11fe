// The step runner: `npx tsx steps/run.ts --all` runs the whole method and writes a report.
// Bad arguments, an unreadable or invalid config, or a --model folder without a valid checkpoint
// give one error line and exit 1 before anything in the run directory is touched.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { initBackend } from '../engine/runtime.ts';
import { expandTextPaths } from '../interp/text/stream.ts';
import { resolveCheckpoint } from '../mamba/hub.ts';
import { tasks } from '../interp/tasks/index.ts';
import { validatePretrained } from '../mamba/pretrained.ts';
import { runMain, UsageError } from './cli-main.ts';
import { checkBudget, defaultBudget, studyShapes } from './budget.ts';
import { checkConfigRanges, DEFAULT_CONFIG, mergeConfig, PRESETS, type RunConfig } from './config.ts';
import { checkRunDirWritable, readJson, writeJsonAtomic } from './files.ts';
import { Runner, shrinkOf, withMissingNeeds } from './runner.ts';
import { STEPS } from './index.ts';
import { writeRunReport } from './report-io.ts';
import { stepInfo } from './table.ts';
import { checkTextRun, prepareTextTask } from './text-source.ts';

const LAST = STEPS.length - 1;
const REPORT_STEP = stepInfo('report').id;

const USAGE = `usage: npx tsx steps/run.ts (--all | --step N | --from N) [options]

  --all              run every step (0-${LAST}) in order
  --step N           run step N only (its inputs must already be in the run directory)
  --from N           run steps N..${LAST}
  --config FILE      JSON config; fields not given keep their defaults (all written to the run dir)
  --out DIR          run directory (default runs/default, or runs/NAME with --preset NAME)
  --backend B        auto | cpu | webgpu (default auto; env MI_BACKEND)
  --model DIR|NAME   a Hugging Face Mamba checkpoint (config.json + model.safetensors) instead of
                     the toy models: a folder, or a hub id (state-spaces/mamba-130m-hf) already in
                     the local hub cache (HF_HUB_CACHE, HF_HOME/hub or ~/.cache/huggingface/hub;
                     nothing is downloaded); runs only the steps marked * below
  --text FILE        (with --model) study the checkpoint on your text instead of induction sequences:
                     plain text files or JSONL with a "text" field, a name glob ("data/*.jsonl"),
                     repeatable; read through the checkpoint's tokenizer.json in windows of
                     train.seqLen tokens, a seeded sample of text.windows of them
  --preset NAME      quick (small, for tests), paper (the papers' task sizes, for a GPU) or text
                     (a Mamba language model trained on the Brown corpus); applied before --config
  --quick            the same as --preset quick (with --preset text: its small version, text-quick)
  --force            replace finished steps with smaller ones (fewer tasks, seeds, hooks, sequences)
  --help             this text

steps:
${STEPS.map((s) => `  ${String(s.id).padStart(2)}${s.appliesToModel ? '*' : ' '} ${s.title}`).join('\n')}
`;

const OPTIONS = {
  all: { type: 'boolean' },
  step: { type: 'string' },
  from: { type: 'string' },
  config: { type: 'string' },
  out: { type: 'string' },
  backend: { type: 'string' },
  model: { type: 'string' },
  text: { type: 'string', multiple: true },
  quick: { type: 'boolean' },
  preset: { type: 'string' },
  force: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

interface Args {
  all: boolean;
  step?: number;
  from?: number;
  config?: string;
  out?: string;
  backend?: string;
  model?: string;
  text: string[];
  quick: boolean;
  preset?: string;
  force: boolean;
  help: boolean;
}

/** parseArgs's error as one line naming the argument. */
function argumentError(e: Error & { code?: string }): UsageError {
  const quoted = /'([^']*)'/.exec(e.message)?.[1] ?? '';
  const flag = /--[\w-]+/.exec(quoted)?.[0] ?? quoted.split(' ')[0];
  const option = OPTIONS[flag.replace(/^--/, '') as keyof typeof OPTIONS];
  if (e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' || e.code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL')
    return new UsageError(`unknown argument "${quoted}" (see --help)`);
  if (e.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' && option?.type === 'boolean') return new UsageError(`${flag} takes no value`);
  if (e.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' && /ambiguous/.test(e.message))
    return new UsageError(`${flag} needs a value (give one that starts with "-" as ${flag}=VALUE)`);
  if (e.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') return new UsageError(`${flag} needs a value`);
  return new UsageError(`${e.message.split('\n')[0]} (see --help)`);
}

/** The command line, read with node:util's parseArgs. */
function readArgs(argv: string[]): Args {
  const values = (() => {
    try {
      return parseArgs({ args: argv, options: OPTIONS, strict: true, allowPositionals: false }).values;
    } catch (e) {
      throw argumentError(e as Error);
    }
  })();
  for (const [k, v] of Object.entries(values))
    if (v === '' || (Array.isArray(v) && v.includes(''))) throw new UsageError(`--${k} needs a value`);
  const stepNumber = (v: string | undefined, flag: string) => {
    if (v === undefined) return undefined;
    // digits only: Number() would also read " " as 0 and "0x2" as 2
    const n = /^\d+$/.test(v) ? Number(v) : NaN;
    if (!Number.isInteger(n) || n < 0 || n > LAST) throw new UsageError(`${flag}: unknown step "${v}" (steps are 0-${LAST})`);
    return n;
  };
  const which = [values.all && '--all', values.step !== undefined && '--step', values.from !== undefined && '--from'].filter(Boolean);
  if (which.length > 1) throw new UsageError(`${which.join(' and ')} ask for different steps; give one`);
  return {
    all: values.all ?? false,
    step: stepNumber(values.step, '--step'),
    from: stepNumber(values.from, '--from'),
    config: values.config,
    out: values.out,
    backend: values.backend,
    model: values.model,
    text: values.text ?? [],
    quick: values.quick ?? false,
    preset: presetName(values.preset, values.quick ?? false),
    force: values.force ?? false,
    help: values.help ?? false,
  };
}

function presetName(preset: string | undefined, quick: boolean): string | undefined {
  if (preset !== undefined && !(preset in PRESETS))
    throw new UsageError(`--preset: unknown preset "${preset}" (presets: ${Object.keys(PRESETS).join(', ')})`);
  if (quick && preset !== undefined && preset !== 'quick') {
    // a preset with a small version of its own (text-quick) takes --quick as asking for that
    if (`${preset}-quick` in PRESETS) return `${preset}-quick`;
    throw new UsageError(`--quick and --preset ${preset} ask for two presets; give one`);
  }
  return quick ? 'quick' : preset;
}

function modelFromHub(name: string): string {
  try {
    return resolveCheckpoint(name).dir;
  } catch (e) {
    throw new Error(`--model ${name}: ${(e as Error).message}`);
  }
}

/** A --model folder must hold a readable Mamba config and its weights. */
function checkModelDir(dir: string): void {
  const cfgPath = join(dir, 'config.json');
  if (!existsSync(dir)) throw new Error(`--model ${dir}: no such directory`);
  const cfg = readJson<Record<string, unknown>>(cfgPath, `--model ${dir}: config.json`);
  for (const field of ['vocab_size', 'hidden_size', 'num_hidden_layers', 'state_size']) {
    if (typeof cfg[field] !== 'number') throw new Error(`--model ${dir}: config.json has no numeric "${field}"`);
  }
  if (!existsSync(join(dir, 'model.safetensors')) && !existsSync(join(dir, 'model.safetensors.index.json'))) {
    throw new Error(`--model ${dir}: no model.safetensors or model.safetensors.index.json`);
  }
}

export function buildConfig(args: Args): RunConfig {
  let config = DEFAULT_CONFIG;
  if (args.preset) config = mergeConfig(config, PRESETS[args.preset], `--preset ${args.preset}`);
  if (args.config) config = mergeConfig(config, readJson(args.config, `--config ${args.config}`), `--config ${args.config}`);
  const flags: Record<string, unknown> = {};
  // --backend, else MI_BACKEND (as the README says), else the config's
  const backend = args.backend ?? process.env.MI_BACKEND;
  if (backend !== undefined) flags.backend = backend;
  // a folder (checked by checkModelDir), or a hub repository id found in the local hub cache
  // (mamba/hub.ts): the run records the snapshot folder it resolved to
  if (args.model) flags.model = existsSync(args.model) ? resolve(args.model) : modelFromHub(args.model);
  if (args.text.length) {
    if (!args.model) throw new Error('--text needs --model: a checkpoint with its tokenizer.json to read the text with');
    flags.text = { files: expandTextPaths(args.text) };
  }
  config = mergeConfig(config, flags, 'command line');
  checkConfigRanges(config, Object.keys(tasks));
  if (!['auto', 'cpu', 'webgpu'].includes(config.backend))
    throw new Error(
      `backend must be auto, cpu or webgpu, got "${config.backend}"${args.backend === undefined && process.env.MI_BACKEND !== undefined ? ' (from MI_BACKEND)' : ''}`,
    );
  return config;
}

async function main(argv: string[]): Promise<number> {
  const args = readArgs(argv);
  if (args.help || (!args.all && args.step === undefined && args.from === undefined)) {
    process.stdout.write(USAGE);
    return args.help ? 0 : 2;
  }
  const config = buildConfig(args);
  if (config.model) checkModelDir(config.model);
  // every weight and config field of the checkpoint, before anything is written
  if (config.model) await validatePretrained(config.model);
  if (config.text.files.length) checkTextRun(config);
  let ids = args.step !== undefined ? [args.step] : STEPS.map((s) => s.id).filter((i) => i >= (args.from ?? 0));
  const skipped = config.model ? ids.filter((i) => !STEPS[i].appliesToModel) : [];
  ids = ids.filter((i) => !skipped.includes(i));
  if (!ids.length) throw new UsageError(`--model: step ${skipped.join(', ')} does not apply to a checkpoint (it needs the toy models)`);
  const runDir = resolve(args.out ?? `runs/${args.preset ?? 'default'}`);
  checkRunDirWritable(runDir);
  if (!args.force) {
    const shrink = shrinkOf(runDir, config, STEPS);
    if (shrink) throw new Error(`${shrink} (--force replaces it)`);
  }
  const backend = await initBackend(config.backend);
  // the buffers steps 2-4 would allocate, against half of RAM and the device's limits (steps/budget.ts)
  checkBudget(config, studyShapes(config), defaultBudget(backend), withMissingNeeds(STEPS, config, runDir, ids));
  // the text is read whole (and a bad line found) before anything is written
  if (config.text.files.length) console.log(await prepareTextTask(config));
  writeJsonAtomic(join(runDir, 'config.json'), config);
  console.log(`run ${runDir} on ${backend.description}`);
  if (skipped.length)
    console.log(
      `--model: skipping step(s) ${skipped.join(', ')} (${skipped.map((i) => STEPS[i].title).join(', ')}): they train or compare the toy models`,
    );
  const runner = new Runner(STEPS, config, runDir, backend);
  const t0 = performance.now();
  await runner.run(ids);
  // steps after the report (13, 14) add to it: rebuild it so it covers the whole run
  if (ids.some((i) => i > REPORT_STEP)) {
    writeRunReport(runDir, config.report.title, backend.description, config.seed);
  }
  console.log(`done in ${((performance.now() - t0) / 1000).toFixed(1)} s: ${runDir}`);
  return 0;
}

runMain(() => main(process.argv.slice(2)));
