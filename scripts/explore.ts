// The live model explorer: `npm run explore -- --run DIR [--port N]`. Serves, on 127.0.0.1 only,
//   /                  the page (scripts/explorer/index.html)
//   /app.js            the page script (scripts/explorer/app.ts), bundled in memory by esbuild
//   /mamba-interp.js   the library bundle (browser.ts), the same build as build:browser
//   /run/...           the run directory's files, read-only (GET and HEAD; nothing outside it)
//   /model/...         a --model run's checkpoint folder (the run's config.json names it), read-only
//   /run-index.json    what the page cannot see without probing for files (runIndex)
// The page loads the run's trained models, SAEs and circuits with fetch() and computes everything
// itself, on WebGPU where the browser has it and on the CPU backend otherwise. Nothing is written.
import { build } from 'esbuild';
import { existsSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { CONTENT_TYPES, listenLocal, readOnlyPath, sendFileInside, sendText } from './static-files.ts';
import { BROWSER_OPTIONS, ENTRY, libraryFromBundle } from './build-browser.ts';
import { runMain, UsageError } from '../steps/cli-main.ts';
import { loadTrainedModels, TRAIN_DIR } from '../steps/artefacts.ts';
import type { RunConfig } from '../steps/config.ts';
import { studyModels } from '../steps/models.ts';
import type { StepContext } from '../steps/step.ts';

const PAGE_DIR = resolve(import.meta.dirname, 'explorer');
export const DEFAULT_PORT = 4173;

/** The library bundle and the page script, built in memory (the page imports the library by URL). */
export async function buildExplorerAssets(): Promise<Map<string, string>> {
  const outputs = new Map<string, string>();
  const lib = await build({ ...BROWSER_OPTIONS, entryPoints: [ENTRY], outfile: 'mamba-interp.js', write: false });
  const app = await build({
    ...BROWSER_OPTIONS,
    entryPoints: [join(PAGE_DIR, 'app.ts')],
    outfile: 'app.js',
    write: false,
    plugins: [libraryFromBundle],
  });
  for (const r of [lib, app]) {
    if (r.errors.length) throw new Error(`explore: build failed: ${r.errors.map((e) => e.text).join('; ')}`);
  }
  outputs.set('/mamba-interp.js', lib.outputFiles![0].text);
  outputs.set('/app.js', app.outputFiles![0].text);
  outputs.set('/', readFileSync(join(PAGE_DIR, 'index.html'), 'utf8'));
  return outputs;
}

/**
 * What the page learns from the server instead of fetching files that may not exist (each 404 would
 * be an error in its console): which artefacts the run has, which of step 1's checkpoints carry a tokenizer.json (the page then
 * takes text), and the checkpoint a --model run studied, served at /model/.
 */
export interface RunIndex {
  /** which of the run's JSON files the page reads (EXPLORER_FILES) exist */
  present: string[];
  /** the models.json dirs (relative to step-01-train/) whose checkpoint holds a tokenizer.json */
  tokenizers: string[];
  /** a --model run's checkpoint: its folder name, the task the run studied it on and the task's options */
  pretrained: { name: string; task: string; taskOptions: Record<string, number>; tokenizer: boolean } | null;
}

/** The run's files the page's panels read, relative to the run directory. */
export const EXPLORER_FILES = ['step-01-train/models.json', 'step-03-sae/saes.json', 'step-05-circuits/circuits.json'];

/** The run's config.json, or null before step 0 wrote it; a broken one is an error naming it. */
function runConfig(runRoot: string): RunConfig | null {
  const cfgPath = join(runRoot, 'config.json');
  if (!existsSync(cfgPath)) return null;
  try {
    return JSON.parse(readFileSync(cfgPath, 'utf8')) as RunConfig;
  } catch (e) {
    throw new Error(`${cfgPath}: ${(e as Error).message}`);
  }
}

/** The --model checkpoint folder a run's config names, when it still exists; else null. */
function pretrainedDir(config: RunConfig | null): string | null {
  const model = config?.model;
  return model && existsSync(join(model, 'config.json')) ? realpathSync(model) : null;
}

/** Read afresh for each request: a run still in progress gains checkpoints. */
export function runIndex(runRoot: string): RunIndex {
  const train = join(runRoot, TRAIN_DIR);
  const tokenizers = existsSync(join(train, 'models.json'))
    ? loadTrainedModels(runRoot)
        .map((m) => m.dir)
        .filter((d) => existsSync(join(train, d, 'tokenizer.json')))
    : [];
  const config = runConfig(runRoot);
  const dir = pretrainedDir(config);
  let pretrained: RunIndex['pretrained'] = null;
  if (config && dir) {
    // with config.model set, studyModels reads only the config (and the checkpoint's own files)
    const [m] = studyModels({ config } as StepContext);
    pretrained = {
      name: dir.split('/').pop()!,
      task: m.task,
      taskOptions: m.taskOptions,
      tokenizer: existsSync(join(dir, 'tokenizer.json')),
    };
  }
  const present = EXPLORER_FILES.filter((f) => existsSync(join(runRoot, f)));
  return { present, tokenizers, pretrained };
}

export interface Explorer {
  /** e.g. http://127.0.0.1:4173 */
  origin: string;
  runDir: string;
  close(): Promise<void>;
}

/** Starts the explorer's server for `runDir` on 127.0.0.1 (port 0: any free port). */
export async function startExplorer(opts: { runDir: string; port?: number }): Promise<Explorer> {
  if (!existsSync(opts.runDir) || !statSync(opts.runDir).isDirectory())
    throw new Error(`explore: run directory ${opts.runDir} does not exist`);
  const runRoot = realpathSync(resolve(opts.runDir));
  const assets = await buildExplorerAssets();
  const server: Server = createServer((req, res) => {
    try {
      handle(req, res);
    } catch (e) {
      // e.g. a broken config.json of the run: the page shows the message; the server keeps serving
      if (res.headersSent) res.destroy(e as Error);
      else sendText(res, 500, `explore: ${(e as Error).message}`);
    }
  });
  function handle(req: IncomingMessage, res: ServerResponse): unknown {
    // read-only: the run directory is data, never a place the page writes to
    const path = readOnlyPath(req, res);
    if (path === null) return;
    const asset = assets.get(path === '/index.html' ? '/' : path);
    if (asset !== undefined) {
      res.writeHead(200, {
        'content-type': path.endsWith('.js') ? CONTENT_TYPES['.js'] : CONTENT_TYPES['.html'],
        'cache-control': 'no-store',
      });
      return res.end(req.method === 'HEAD' ? undefined : asset);
    }
    if (path === '/favicon.ico') {
      res.writeHead(204);
      return res.end();
    }
    if (path === '/run-index.json') {
      const index = JSON.stringify(runIndex(runRoot));
      res.writeHead(200, { 'content-type': CONTENT_TYPES['.json'], 'cache-control': 'no-store' });
      return res.end(req.method === 'HEAD' ? undefined : index);
    }
    if (path.startsWith('/model/')) {
      const model = pretrainedDir(runConfig(runRoot));
      if (!model) return sendText(res, 404, 'this run has no --model checkpoint');
      return sendFileInside(req, res, model, path.slice('/model'.length), { what: 'the --model checkpoint' });
    }
    if (!path.startsWith('/run/')) return sendText(res, 404, 'not found');
    sendFileInside(req, res, runRoot, path.slice('/run'.length), { what: 'the run directory' });
  }
  const { origin, close } = await listenLocal(server, opts.port ?? DEFAULT_PORT, 'explore');
  return { origin, runDir: runRoot, close };
}

const USAGE = 'usage: npm run explore -- --run DIR [--port N]';

function readArgs(argv: string[]): { runDir: string; port: number } | null {
  let values: { run?: string; port?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: { run: { type: 'string' }, port: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    throw new UsageError(`explore: ${(e as Error).message.split('\n')[0]} (${USAGE})`);
  }
  if (values.help) return null;
  if (!values.run) throw new UsageError(`explore: --run DIR is required (a directory written by steps/run.ts; ${USAGE})`);
  const port = values.port === undefined ? DEFAULT_PORT : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new UsageError(`explore: --port must be an integer in [0, 65535], got ${values.port}`);
  return { runDir: resolve(values.run), port };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await runMain(async () => {
    const args = readArgs(process.argv.slice(2));
    if (!args) {
      console.log(USAGE);
      return 0;
    }
    const ex = await startExplorer(args);
    console.log(`explore: ${ex.runDir}\nexplore: open ${ex.origin}/ (127.0.0.1 only; Ctrl-C stops)`);
    return undefined; // the server keeps the process running
  });
}
