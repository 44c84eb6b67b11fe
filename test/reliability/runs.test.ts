// steps/run.ts misuse (issue 17): each case in a child process with a heap cap and a harness
// timeout; one `error:` line naming the field or path, exit 1, no stack trace, and a copy of a
// finished quick run byte-identical afterwards.
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { quickRun } from '../helpers/quick-run.ts';

function hashTree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out[p.slice(dir.length)] = createHash('sha256').update(readFileSync(p)).digest('hex');
    }
  };
  walk(dir);
  return out;
}

function run(args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((res) => {
    execFile(
      process.execPath,
      ['--max-old-space-size=512', '--import', 'tsx', 'steps/run.ts', ...args],
      { timeout: 60_000, env: { ...process.env, MI_DEBUG: '' } },
      (e, _out, stderr) => res({ code: e ? ((e as { code?: number }).code ?? null) : 0, stderr }),
    );
  });
}

test('a shrinking config or a bad --out is one error line and leaves a finished run as it was', { timeout: 240_000 }, async () => {
  const src = await quickRun();
  const dir = join(mkdtempSync(join(tmpdir(), 'mi-runs-')), 'run');
  cpSync(src, dir, { recursive: true });
  const before = hashTree(dir);
  const cfg = (name: string, value: unknown) => {
    const p = join(dir, '..', `${name}.json`);
    writeFileSync(p, JSON.stringify(value));
    return p;
  };
  const cases: [string[], RegExp][] = [
    [
      ['--step', '1', '--quick', '--backend', 'cpu', '--out', dir, '--config', cfg('seeds', { train: { seeds: 1 } })],
      /train\.seeds would shrink/,
    ],
    [
      ['--step', '1', '--quick', '--backend', 'cpu', '--out', dir, '--config', cfg('tasks', { tasks: ['induction'] })],
      /tasks would shrink \(without selective-copying, mqar\)/,
    ],
    [
      ['--step', '2', '--quick', '--backend', 'cpu', '--out', dir, '--config', cfg('batches', { collect: { batches: 1 } })],
      /step 2 \(collect\).*collect\.batches would shrink/,
    ],
    [['--step', '0', '--quick', '--out', '/proc/x'], /--out \/proc\/x: cannot write in \/proc/],
    [['--step', '0', '--quick', '--out', join(dir, 'config.json', 'x')], /config\.json is a file/],
    [['--step', '0', '--quick', '--out', ''], /--out needs a value/], // a usage error: exit 2
  ];
  for (let i = 0; i < cases.length; i += 3) {
    const results = await Promise.all(cases.slice(i, i + 3).map(([a]) => run(a)));
    results.forEach((r, j) => {
      const [a, want] = cases[i + j];
      const lines = r.stderr.trim().split('\n');
      assert.equal(r.code, a.includes('') ? 2 : 1, `${a.join(' ')}: exit ${r.code}\n${r.stderr}`);
      assert.equal(lines.length, 1, `${a.join(' ')}: one line, got\n${r.stderr}`);
      assert.match(lines[0], /^error: /);
      assert.match(lines[0], want);
      assert.doesNotMatch(r.stderr, /\n\s+at /);
    });
  }
  assert.deepEqual(hashTree(dir), before);
});
