// The whole quick pipeline (`steps/run.ts --all --quick --backend cpu`), run once per test process
// and shared by every test file that checks its artefacts. It runs as a child process so a crash
// or a leaked tensor in a step cannot take the test runner down with it.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '../..');
// Generous: the quick preset should take well under a minute, but CI machines are shared.
const TIMEOUT_MS = 10 * 60_000;
const TAIL_CHARS = 4000;

let run: Promise<string> | null = null;

/**
 * Runs the quick pipeline once (memoised) and returns its run directory. MI_QUICK_RUN_DIR=<dir>
 * reuses a directory across test processes (the runner skips steps already done there); otherwise
 * a temp directory is used and removed when the process exits.
 */
export function quickRun(): Promise<string> {
  run ??= start();
  return run;
}

function start(): Promise<string> {
  const keep = process.env.MI_QUICK_RUN_DIR;
  const outDir = keep ? resolve(keep) : mkdtempSync(join(tmpdir(), 'mi-quick-run-'));
  if (!keep) process.once('exit', () => rmSync(outDir, { recursive: true, force: true }));
  const args = ['--import', 'tsx', join(ROOT, 'steps/run.ts'), '--all', '--quick', '--backend', 'cpu', '--out', outDir];
  return new Promise((ok, fail) => {
    // MI_BACKEND would only be overridden by --backend, but keep the child's env otherwise as is
    // (NODE_V8_COVERAGE lets c8 count the steps' coverage too).
    const child = spawn(process.execPath, args, { cwd: ROOT, env: process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '',
      stderr = '';
    const keepTail = (s: string, chunk: Buffer) => (s + chunk.toString()).slice(-TAIL_CHARS);
    child.stdout.on('data', (c: Buffer) => {
      stdout = keepTail(stdout, c);
    });
    child.stderr.on('data', (c: Buffer) => {
      stderr = keepTail(stderr, c);
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), TIMEOUT_MS);
    child.on('error', (e) => {
      clearTimeout(timer);
      fail(new Error(`quickRun: could not start ${process.execPath}: ${e.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) return ok(outDir);
      const why = signal ? `killed by ${signal}${signal === 'SIGKILL' ? ` (timeout ${TIMEOUT_MS / 1000} s?)` : ''}` : `exit code ${code}`;
      fail(
        new Error(
          `quickRun: steps/run.ts --all --quick --backend cpu --out ${outDir} failed (${why})\n` +
            `--- stderr (tail) ---\n${stderr.trim() || '(empty)'}\n--- stdout (tail) ---\n${stdout.trim() || '(empty)'}`,
        ),
      );
    });
  });
}
