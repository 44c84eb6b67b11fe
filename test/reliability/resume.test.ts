// Kill and resume (issue 17): `steps/run.ts --all --quick --backend cpu` is SIGKILLed inside step 1
// (while its first models train, and again once some have finished), inside steps 3, 5, 6 and 8,
// and inside step 11 once its mixture model is kept (its caption used to say the model was reused),
// resumed each time with the same command, and the finished run must equal an uninterrupted quick
// run (test/helpers/quick-run.ts) file for file and byte for byte, report.html included, except the
// wall-clock parts named below. Each resume starts where the last kill left off, so the whole costs
// about one quick run plus a process start per kill.
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'uvu';
import { quickRun } from '../helpers/quick-run.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const ARGS = ['--all', '--quick', '--backend', 'cpu'];
const CHILD_TIMEOUT_MS = 5 * 60_000;
const POLL_MS = 20;

// ---- where to kill ------------------------------------------------------------------------------

interface KillPoint {
  what: string;
  /** the step's folder name: it works in `${dir}.partial` until it finishes */
  dir: string;
  /** whether to kill now, given the step's partial folder and how long it has been seen */
  ready: (partial: string, seenMs: number) => boolean;
}

/** record.json files in step 1's partial folder: one per model finished (interp/train-task.ts) */
const finishedModels = (partial: string) => {
  const models = join(partial, 'models');
  return existsSync(models) ? readdirSync(models).filter((m) => existsSync(join(models, m, 'record.json'))).length : 0;
};

// A kill lands a little after the step starts, so it has work in flight (the quick steps take 1-7 s
// on one core); step 1 is killed twice, before any model is kept and after some are.
const POINTS: KillPoint[] = [
  { what: 'step 1, first models training', dir: 'step-01-train', ready: (p, ms) => ms >= 300 && finishedModels(p) === 0 },
  { what: 'step 1, some models finished', dir: 'step-01-train', ready: (p) => finishedModels(p) >= 1 },
  { what: 'step 3', dir: 'step-03-sae', ready: (_, ms) => ms >= 250 },
  { what: 'step 5', dir: 'step-05-circuits', ready: (_, ms) => ms >= 150 },
  { what: 'step 6', dir: 'step-06-patching', ready: (_, ms) => ms >= 250 },
  { what: 'step 8', dir: 'step-08-temporal', ready: (_, ms) => ms >= 250 },
  // step 11 keeps its trained mixture model in its partial folder and reuses it
  { what: 'step 11, mixture model kept', dir: 'step-11-transfer', ready: (p) => existsSync(join(p, 'mixture', 'record.json')) },
];

interface Outcome {
  point: KillPoint;
  hit: boolean;
  why: string;
}

/**
 * One `steps/run.ts` child on `out`, killed at the first of `points` it reaches. Returns that
 * point's outcome (hit: the step was still unfinished after the kill) and any points it passed
 * without stopping at (their step finished first), or no outcome when the run went to the end.
 */
function runUntil(out: string, points: KillPoint[]): Promise<{ outcomes: Outcome[]; finished: boolean }> {
  const args = ['--import', 'tsx', join(ROOT, 'steps/run.ts'), ...ARGS, '--out', out];
  return new Promise((ok, fail) => {
    const child = spawn(process.execPath, args, { cwd: ROOT, env: process.env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => {
      stderr = (stderr + c.toString()).slice(-4000);
    });
    const outcomes: Outcome[] = [];
    let i = 0;
    let seenAt: number | null = null;
    let killed: KillPoint | null = null;
    const done = (p: KillPoint) => existsSync(join(out, p.dir, 'done.json')) && !existsSync(join(out, `${p.dir}.partial`));
    const poll = setInterval(() => {
      if (killed) return;
      while (i < points.length && done(points[i])) {
        outcomes.push({ point: points[i], hit: false, why: 'the step finished before the kill condition held' });
        i++;
        seenAt = null;
      }
      if (i >= points.length) return;
      const partial = join(out, `${points[i].dir}.partial`);
      if (!existsSync(partial)) return;
      seenAt ??= performance.now();
      if (!points[i].ready(partial, performance.now() - seenAt)) return;
      killed = points[i];
      child.kill('SIGKILL');
    }, POLL_MS);
    const timer = setTimeout(() => child.kill('SIGKILL'), CHILD_TIMEOUT_MS);
    child.on('error', (e) => fail(new Error(`could not start steps/run.ts: ${e.message}`)));
    child.on('close', (code, signal) => {
      clearInterval(poll);
      clearTimeout(timer);
      if (killed) {
        // hit: killed while the step was running, its work still in .partial and not renamed into place
        const partialLeft = existsSync(join(out, `${killed.dir}.partial`));
        const finished = existsSync(join(out, killed.dir, 'done.json'));
        outcomes.push({
          point: killed,
          hit: partialLeft && !finished,
          why: partialLeft ? 'killed inside the step' : 'the step finished first',
        });
        return ok({ outcomes, finished: false });
      }
      if (code !== 0) return fail(new Error(`steps/run.ts ${ARGS.join(' ')} --out ${out}: ${signal ?? `exit ${code}`}\n${stderr}`));
      for (; i < points.length; i++) outcomes.push({ point: points[i], hit: false, why: 'the run finished first' });
      ok({ outcomes, finished: true });
    });
  });
}

// ---- what may differ ----------------------------------------------------------------------------

/**
 * Left out of the comparison, with why: log.txt timestamps every line (and a resumed run logs each
 * restart); step 14 measures this machine's time per token, so every number and figure it writes
 * is wall-clock time.
 */
const SKIP = [/^log\.txt$/, /^step-14-scaleup\//];

/**
 * JSON fields holding wall-clock times, dropped wherever they occur: `seconds` and `finishedAt`
 * (every done.json), `startedAt` (step 0's setup.json), `trainSeconds` (step 1's models.json and
 * each model's record.json, step 11's mixture.json and mixture/record.json).
 */
const WALL_CLOCK_KEYS = new Set(['seconds', 'finishedAt', 'startedAt', 'trainSeconds']);
/** step 1's "Models" table column of training seconds (report.json, report.html, report.md) */
const TRAIN_S = 'train s';
/** step 11's training-curve caption: "160 steps, 1.338 s" */
const STEPS_SECONDS = /(\d+ steps, )[-+.e0-9]+ s\b/g;
/** report.html's and report.md's creation time */
const ISO_TIME = /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/g;

function dropWallClock(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(dropWallClock);
  if (v === null || typeof v !== 'object') return v;
  const o = Object.fromEntries(
    Object.entries(v)
      .filter(([k]) => !WALL_CLOCK_KEYS.has(k))
      .map(([k, x]) => [k, dropWallClock(x)]),
  );
  const col = Array.isArray(o.columns) ? o.columns.indexOf(TRAIN_S) : -1;
  if (col >= 0 && Array.isArray(o.rows)) o.rows = o.rows.map((r: unknown[]) => r.map((x, j) => (j === col ? '<s>' : x)));
  return o;
}

/** report.html: the "Time per step" table and step 14's section go; step 1's training seconds are blanked. */
function reportHtml(s: string): string {
  return s
    .replace(/<div class="table-wrap"><table><caption>Time per step<\/caption>.*?<\/table><\/div>/s, '<timings>')
    .replace(/<section id="step-14">.*?<\/section>/s, '<step 14>')
    .replace(/<section id="step-1">.*?<\/section>/s, (sec) =>
      sec.replace(/<caption>Models<\/caption>.*?<\/table>/s, (t) =>
        t.replace(/<td class="num">[^<]*<\/td><\/tr>/g, '<td>&lt;s&gt;</td></tr>'),
      ),
    );
}

/** report.md: the same parts as reportHtml. */
function reportMd(s: string): string {
  return s
    .replace(/\*\*Time per step\*\*\n\n(\|.*\n)+/, '<timings>\n')
    .replace(/\n## 14\. [\s\S]*$/, '\n<step 14>\n')
    .replace(/\n## 1\. [\s\S]*?(?=\n## 2\. )/, (sec) =>
      sec.replace(/\*\*Models\*\*\n\n(\|.*\n)+/, (t) => t.replace(/\| [^|\n]*\|$/gm, '| <s> |')),
    );
}

const TEXT = /\.(json|txt|html|md|svg)$/;

/** A file as compared: text with the run directory and the wall-clock parts replaced, else its bytes. */
function comparable(rel: string, bytes: Buffer, runDir: string): string | Buffer {
  if (!TEXT.test(rel)) return bytes;
  // paths inside artefacts (a model's record.json, report.html's header) name the run directory
  let s = bytes.toString('utf8').split(runDir).join('<run>');
  if (rel.endsWith('.json')) s = JSON.stringify(dropWallClock(JSON.parse(s)), null, 2);
  if (rel === 'report.html') s = reportHtml(s);
  if (rel === 'report.md') s = reportMd(s);
  return s.replace(STEPS_SECONDS, '$1<s> s').replace(ISO_TIME, '<time>');
}

function files(dir: string, rel = ''): string[] {
  return readdirSync(join(dir, rel))
    .sort()
    .flatMap((name) => {
      const r = rel ? `${rel}/${name}` : name;
      return statSync(join(dir, r)).isDirectory() ? files(dir, r) : [r];
    });
}

/** Every difference between two run directories, one line each (empty: the same). */
function runDifferences(a: string, b: string): string[] {
  const list = (d: string) => files(d).filter((f) => !SKIP.some((re) => re.test(f)));
  const fa = list(a);
  const fb = list(b);
  const diffs = [
    ...fa.filter((f) => !fb.includes(f)).map((f) => `${f}: only in the uninterrupted run`),
    ...fb.filter((f) => !fa.includes(f)).map((f) => `${f}: only in the resumed run`),
  ];
  for (const f of fa.filter((x) => fb.includes(x))) {
    const x = comparable(f, readFileSync(join(a, f)), a);
    const y = comparable(f, readFileSync(join(b, f)), b);
    const same = typeof x === 'string' ? x === y : Buffer.isBuffer(y) && x.equals(y);
    if (!same) diffs.push(`${f}: differs${typeof x === 'string' ? ` (first at ${firstDiff(x, y as string)})` : ''}`);
  }
  return diffs;
}

function firstDiff(x: string, y: string): string {
  let i = 0;
  while (i < x.length && x[i] === y[i]) i++;
  return `char ${i}: ${JSON.stringify(x.slice(Math.max(0, i - 60), i + 60))} vs ${JSON.stringify(y.slice(Math.max(0, i - 60), i + 60))}`;
}

// ---- the test -----------------------------------------------------------------------------------

// (each child has CHILD_TIMEOUT_MS; uvu has no per-test timeout)
test('--all --quick killed inside steps 1, 3, 5, 6, 8 and 11 and resumed equals an uninterrupted run', async () => {
  const reference = await quickRun();
  const root = mkdtempSync(join(tmpdir(), 'mi-resume-'));
  try {
    const out = join(root, 'run');
    const outcomes: Outcome[] = [];
    let finished = false;
    for (let restarts = 0; !finished && outcomes.length < POINTS.length; restarts++) {
      assert.ok(restarts <= POINTS.length, 'each run reaches a kill point or the end');
      const r = await runUntil(out, POINTS.slice(outcomes.length));
      outcomes.push(...r.outcomes);
      finished = r.finished;
    }
    if (!finished) assert.ok((await runUntil(out, [])).finished);
    const hits = outcomes.map((o) => `${o.point.what}: ${o.hit ? 'hit' : `missed (${o.why})`}`);
    console.log(`kill points: ${hits.join('; ')}`);
    const missed = outcomes.filter((o) => !o.hit);
    assert.equal(missed.length, 0, `every kill landed inside its step: ${hits.join('; ')}`);

    const leftovers = readdirSync(out).filter((f) => /\.(partial|old)$/.test(f));
    assert.deepEqual(leftovers, [], 'no .partial or .old folder left');
    const diffs = runDifferences(reference, out);
    assert.deepEqual(diffs, [], `the resumed run differs from the uninterrupted one:\n${diffs.slice(0, 20).join('\n')}`);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test.run();
