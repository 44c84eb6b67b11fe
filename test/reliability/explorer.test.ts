// The explorer keeps serving after a request for a file it cannot read (issue 17): the server
// (scripts/explore.ts as a CLI, in a child process) answers a mode-000 file of its run directory
// with 403 and then still serves a readable one. Root reads a mode-000 file, so when this runs as
// root the child runs as user nobody (65534), which the file's mode does lock out; the repository,
// node and tsx must be readable by it, and tsx writes its cache under /tmp/tsx-65534. It also
// refuses a request that names another host (a DNS-rebinding page), and runs with a heap cap.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

const ROOT = resolve(import.meta.dirname, '../..');
const NOBODY = 65534;
const START_TIMEOUT_MS = 120_000;
/** the server's heap cap: a request must not grow it without bound */
const HEAP_MB = 256;

/** A GET of `path`, with another Host header when given. */
function get(origin: string, path: string, host?: string): Promise<{ status: number; body: string }> {
  const { port } = new URL(origin);
  return new Promise((ok, fail) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'GET', headers: host ? { host } : {} }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => {
        body += c.toString();
      });
      res.on('end', () => ok({ status: res.statusCode ?? 0, body }));
      res.on('error', fail);
    });
    req.on('error', fail);
    req.end();
  });
}

/**
 * The folders on the way to node, the repository and its node_modules must let others through
 * (o+x) and read them (o+r), or the child as nobody cannot start: say which one, not "exited 1".
 */
function checkReadableByOthers(): void {
  for (const start of [process.execPath, join(ROOT, 'scripts/explore.ts'), join(ROOT, 'node_modules/tsx/package.json')]) {
    for (let p = realpathSync(start); ; p = dirname(p)) {
      const { mode } = statSync(p);
      const need = statSync(p).isDirectory() ? 0o005 : 0o004;
      if ((mode & need) !== need)
        throw new Error(`${p} (mode ${(mode & 0o777).toString(8)}) is not readable by user nobody, who runs the server here`);
      if (p === dirname(p)) break;
    }
  }
}

/** `npm run explore -- --run DIR --port 0` in a child (as nobody when we are root); resolves with its origin. */
function startChild(runDir: string, home: string): Promise<{ child: ChildProcess; origin: string; output: () => string }> {
  const asRoot = process.getuid?.() === 0;
  if (asRoot) checkReadableByOthers();
  // coverage files would land in a folder nobody cannot write; the child's coverage is not the point here
  const { NODE_V8_COVERAGE: _, ...env } = process.env;
  const child = spawn(
    process.execPath,
    [`--max-old-space-size=${HEAP_MB}`, '--import', 'tsx', join(ROOT, 'scripts/explore.ts'), '--run', runDir, '--port', '0'],
    {
      cwd: ROOT,
      env: { ...env, HOME: home, MI_DEBUG: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(asRoot ? { uid: NOBODY, gid: NOBODY } : {}),
    },
  );
  let out = '';
  const collect = (c: Buffer) => {
    out += c.toString();
  };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  return new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`explore did not start within ${START_TIMEOUT_MS} ms:\n${out}`)), START_TIMEOUT_MS);
    child.stdout!.on('data', () => {
      const m = /open (http:\/\/127\.0\.0\.1:\d+)\//.exec(out);
      if (!m) return;
      clearTimeout(timer);
      ok({ child, origin: m[1], output: () => out });
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      fail(new Error(`explore exited (${signal ?? code}) before serving:\n${out}`));
    });
  });
}

const Unreadable = suite('explorer server: an unreadable file of the run directory');
const base = mkdtempSync(join(tmpdir(), 'mi-explore-unreadable-'));
const runDir = join(base, 'run');
let server: { child: ChildProcess; origin: string; output: () => string } | null = null;
let setupError: Error | null = null;

Unreadable.before(async () => {
  mkdirSync(join(runDir, 'step-01-train'), { recursive: true });
  writeFileSync(join(runDir, 'step-01-train', 'models.json'), '[]');
  writeFileSync(join(runDir, 'locked.json'), '{"secret": true}');
  chmodSync(join(runDir, 'locked.json'), 0o000);
  // mkdtemp makes 0700 folders: nobody must get through them to the run directory
  chmodSync(base, 0o755);
  chmodSync(runDir, 0o755);
  try {
    server = await startChild(runDir, base);
  } catch (e) {
    // uvu does not report a failing before hook by itself: the test throws this instead
    setupError = e as Error;
  }
});

Unreadable.after(() => {
  server?.child.kill();
  rmSync(base, { recursive: true, force: true });
});

Unreadable('a mode-000 file is 403 and the server keeps serving the readable ones', async () => {
  if (setupError) throw setupError;
  const { origin, child, output } = server!;
  const locked = await get(origin, '/run/locked.json');
  assert.is(locked.status, 403, `locked.json: ${locked.status} ${locked.body}`);
  assert.match(locked.body, /cannot read \/locked\.json \(EACCES\)/);
  assert.not.match(locked.body, /secret/);
  assert.is(child.exitCode, null, `the server exited:\n${output()}`);
  const models = await get(origin, '/run/step-01-train/models.json');
  assert.is(models.status, 200, `models.json after the 403: ${models.status} ${models.body}`);
  assert.is(models.body, '[]');
  // and again: one refusal must not leave the server in a state that refuses the next request
  assert.is((await get(origin, '/run/locked.json')).status, 403);
  assert.is((await get(origin, '/')).status, 200);
});

Unreadable('a request naming another host is 421 (no DNS rebinding) and the server keeps serving', async () => {
  if (setupError) throw setupError;
  const { origin, child, output } = server!;
  const { port } = new URL(origin);
  for (const host of [`evil.example:${port}`, `127.0.0.1:${Number(port) + 1}`]) {
    const r = await get(origin, '/run/step-01-train/models.json', host);
    assert.is(r.status, 421, host);
    assert.is.not(r.body, '[]', `${host} read the file`);
  }
  assert.is(child.exitCode, null, `the server exited:\n${output()}`);
  assert.is((await get(origin, '/run/step-01-train/models.json', `localhost:${port}`)).body, '[]');
});

Unreadable.run();
