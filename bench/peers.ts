// This project against the program a researcher would otherwise run: PyTorch on the CPU
// (../shared/peers/torch_mamba.py, Debian's python3-torch with OpenBLAS; its README says how to
// install it), on the same four pieces of work (bench/lib/model-work.ts), in one job, interleaved
// round by round (peer, project, peer, project, ...), each side in a fresh child process, with the
// load average recorded before each run. These machines drift 2x in minutes, so only same-job
// ratios mean anything: ratio = project speed / PyTorch's = PyTorch ms / project ms, per round, and
// the median over rounds.
//   npx tsx bench/peers.ts [--rounds N] [--runs N] [--only a,b,c,d] [--write]
//   (--write replaces the "## Against PyTorch (CPU)" section of bench/RESULTS.md)
// Not part of CI, nor of `npm run bench` (which runs every file here): it needs the peer installed.
import { spawnSync } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import * as mi from '../engine/index.ts';
import { m130Work, toyWork, type WorkKey, type WorkResult } from './lib/model-work.ts';
import { medianOf } from './lib/median.ts';
import { writeResultsSection } from './lib/results.ts';
import { reportErrorsAsOneLine, UsageError } from '../steps/cli-main.ts';

const PEER = resolve(import.meta.dirname, '../../shared/peers/torch_mamba.py');
const PYTHON = '/usr/bin/python3';
const PEER_NAMES: Record<string, WorkKey> = { toy_train_step: 'a', toy_forward: 'b', m130_forward: 'c', m130_decode_step: 'd' };
const TARGETS: Record<WorkKey, number> = { a: 3, b: 2, c: 0.5, d: 1.5 };

interface Side {
  ms: Partial<Record<WorkKey, number>>;
  load: number;
  /** the peer's BLAS libraries / the project's backend line */
  env: string;
}

/** A bad flag: one line, exit 2. */
function fail(message: string): never {
  throw new UsageError(`bench/peers: ${message}`);
}

function runPeer(only: WorkKey[], runs: number): Side {
  const load = loadavg()[0];
  const r = spawnSync(PYTHON, [PEER, 'bench', '--only', only.join(','), '--scan', 'loop', '--runs', String(runs)], { encoding: 'utf8' });
  if (r.status !== 0)
    throw new Error(`bench/peers: the peer failed (${PYTHON} ${PEER}): ${(r.stderr || r.error?.message || '').trim().split('\n').pop()}`);
  const side: Side = { ms: {}, load, env: '' };
  for (const line of r.stdout.split('\n').filter(Boolean)) {
    const j = JSON.parse(line);
    if (j.env) side.env = `torch ${j.env.torch}, ${j.env.threads} threads, BLAS ${(j.env.blas ?? ['none found']).join(', ')}`;
    const key = PEER_NAMES[j.name];
    // decode: the faster of the peer's two variants (1-row gemm, gemv) is what a user would get
    if (key) side.ms[key] = Math.min(side.ms[key] ?? Infinity, j.median_ms);
  }
  return side;
}

function runProject(only: WorkKey[], runs: number): Side {
  const load = loadavg()[0];
  const r = spawnSync(
    process.execPath,
    ['--import', 'tsx', import.meta.filename, '--project-side', '--only', only.join(','), '--runs', String(runs)],
    {
      encoding: 'utf8',
    },
  );
  if (r.status !== 0) throw new Error(`bench/peers: the project side failed: ${(r.stderr || '').trim().split('\n').pop()}`);
  return { ...(JSON.parse(r.stdout.trim().split('\n').pop()!) as Omit<Side, 'load'>), load };
}

/** The child process's side: the work on the CPU backend, one JSON line. */
async function projectSide(only: WorkKey[], runs: number): Promise<void> {
  const cpu = mi.cpuBackend();
  mi.setBackend(cpu);
  const results: WorkResult[] = [
    ...(only.some((k) => k === 'a' || k === 'b') ? await toyWork(cpu, only, runs) : []),
    ...(only.some((k) => k === 'c' || k === 'd') ? await m130Work(only, runs) : []),
  ];
  const ms = Object.fromEntries(results.map((w) => [w.key, w.medianMs]));
  console.log(JSON.stringify({ ms, env: cpu.description }));
}

const WHAT: Record<WorkKey, string> = {
  a: 'toy training step (vocab 64, hidden 64, 2 layers, batch 32 x 256, AdamW)',
  b: 'toy forward',
  c: 'mamba-130m shapes forward, 1 x 128',
  d: 'mamba-130m shapes decode step (float32)',
};

function table(only: WorkKey[], peers: Side[], projects: Side[]): string[] {
  return [
    '| work | PyTorch CPU (median of rounds) | this project (median of rounds) | ratio per round | ratio (median) | target | met |',
    '| --- | ---: | ---: | --- | ---: | ---: | --- |',
    ...only.map((k) => {
      const ratios = peers.map((p, i) => (p.ms[k] ?? NaN) / (projects[i].ms[k] ?? NaN));
      const r = medianOf(ratios);
      return `| ${WHAT[k]} | ${medianOf(peers.map((p) => p.ms[k] ?? NaN)).toFixed(1)} ms | ${medianOf(projects.map((p) => p.ms[k] ?? NaN)).toFixed(1)} ms | ${ratios.map((x) => x.toFixed(2)).join(', ')} | ${r.toFixed(2)}x | >= ${TARGETS[k]}x | ${r >= TARGETS[k] ? 'yes' : 'no'} |`;
    }),
  ];
}

async function main(): Promise<void> {
  const { values } = (() => {
    try {
      return parseArgs({
        options: {
          rounds: { type: 'string', default: '2' },
          runs: { type: 'string', default: '5' },
          only: { type: 'string', default: 'a,b,c,d' },
          write: { type: 'boolean' },
          'project-side': { type: 'boolean' },
        },
      });
    } catch (e) {
      fail(`${(e as Error).message.split('\n')[0]} (flags: --rounds N, --runs N, --only a,b,c,d, --write)`);
    }
  })();
  const only = values.only.split(',') as WorkKey[];
  if (!only.every((k) => k in TARGETS)) fail(`--only takes keys among a,b,c,d, got ${values.only}`);
  const rounds = Number(values.rounds),
    runs = Number(values.runs);
  if (!(Number.isInteger(rounds) && rounds >= 1 && Number.isInteger(runs) && runs >= 1))
    fail('--rounds and --runs take whole numbers >= 1');
  if (values['project-side']) return projectSide(only, runs);

  const peers: Side[] = [],
    projects: Side[] = [];
  for (let r = 0; r < rounds; r++) {
    peers.push(runPeer(only, runs));
    console.log(`round ${r + 1}: PyTorch (load ${peers[r].load.toFixed(2)}) ${JSON.stringify(peers[r].ms)}`);
    projects.push(runProject(only, runs));
    console.log(`round ${r + 1}: project (load ${projects[r].load.toFixed(2)}) ${JSON.stringify(projects[r].ms)}`);
  }
  const lines = table(only, peers, projects);
  console.log(lines.join('\n'));
  if (!values.write) return;
  writeResultsSection(
    '## Against PyTorch (CPU)',
    [
      '## Against PyTorch (CPU)',
      '',
      `Written by \`npx tsx bench/peers.ts --rounds ${rounds} --runs ${runs} --write\` on ${new Date().toISOString().slice(0, 10)}: ${rounds} rounds, each`,
      `PyTorch then this project, each in a fresh process, medians of ${runs} runs (decode: ${runs * 4} steps). Machine: ${cpus().length} x ${cpus()[0]?.model ?? 'cpu'},`,
      `Node ${process.versions.node}. Load average (1 min) before each run: PyTorch ${peers.map((p) => p.load.toFixed(2)).join(', ')};`,
      `project ${projects.map((p) => p.load.toFixed(2)).join(', ')}.`,
      `Peer: ../shared/peers/torch_mamba.py (HF slow path, scan 'loop'), ${peers[0].env}; decode: the faster of its 1-row gemm and gemv variants.`,
      `Project: ${projects[0].env}. Ratio = project speed / PyTorch's (PyTorch ms / project ms); above 1 is faster.`,
      '',
      ...lines,
      '',
    ].join('\n'),
  );
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  reportErrorsAsOneLine(); // a failure is one line `error: ...`, exit 1 (2 for a bad flag)
  await main();
}
