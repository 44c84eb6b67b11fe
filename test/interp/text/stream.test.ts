// Text files -> documents -> token windows -> a uniform sample (interp/text/stream.ts): formats and
// their errors, windows that are exact slices of each document's token stream (BOS first, never
// across documents, the same however the file is cut into pieces), a reservoir that is uniform
// over windows, and a 200 MB file streamed in bounded memory.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Rng } from '../../../engine/random.ts';
import { expandTextPaths, readTextPieces, sampleWindows, tokenWindows, type TokenWindow } from '../../../interp/text/stream.ts';
import { withTempDir } from '../../helpers/temp-dir.ts';

const CHILD = resolve(import.meta.dirname, '../../helpers/stream-memory.ts');

/** One token per character (its code), so windows can be checked against the text itself. */
const chars = { encode: (t: string) => Array.from(t, (c) => c.codePointAt(0)!) };
const BOS = 0;

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

test(
  'expandTextPaths: files and name globs, sorted; a pattern that names nothing is an error naming it',
  withTempDir('mi-text-', (dir) => {
    mkdirSync(join(dir, 'd'));
    for (const f of ['b.jsonl', 'a.jsonl', 'c.txt']) writeFileSync(join(dir, 'd', f), '');
    assert.equal(expandTextPaths([join(dir, 'd', '*.jsonl')]), [join(dir, 'd', 'a.jsonl'), join(dir, 'd', 'b.jsonl')]);
    assert.equal(expandTextPaths([join(dir, 'd', 'c.txt'), join(dir, 'd', '?.jsonl')]).length, 3);
    assert.throws(() => expandTextPaths([join(dir, 'd', '*.md')]), /--text .*\*\.md: matches no file/);
    assert.throws(() => expandTextPaths([join(dir, 'nope.txt')]), /--text .*nope\.txt: no such file/);
    assert.throws(() => expandTextPaths([join(dir, 'd')]), /not a file/);
  }),
);

test(
  'JSONL: one document per line with its line number; a bad line names file and line',
  withTempDir('mi-text-', async (dir) => {
    const f = join(dir, 'docs.jsonl');
    writeFileSync(f, `${JSON.stringify({ text: 'first doc' })}\n\n${JSON.stringify({ text: 'second', id: 7 })}\n`);
    const pieces = await collect(readTextPieces([f]));
    assert.equal(
      pieces.map((p) => [p.doc, p.line, p.text, p.first]),
      [
        [0, 1, 'first doc', true],
        [1, 3, 'second', true],
      ],
    );
    writeFileSync(f, `${JSON.stringify({ text: 'ok' })}\n{"text": 3}\n`);
    await collect(readTextPieces([f])).then(
      () => assert.unreachable('read a line without a text string'),
      (e: Error) => assert.match(e.message, new RegExp(`${f}:2: no string field "text"`)),
    );
    writeFileSync(f, 'not json\n');
    await collect(readTextPieces([f])).then(
      () => assert.unreachable('read a line that is not JSON'),
      (e: Error) => assert.match(e.message, new RegExp(`${f}:1: not JSON`)),
    );
  }),
);

test(
  'plain text: pieces end at newlines and spell the file; windows are exact slices, BOS first, never across documents',
  withTempDir('mi-text-', async (dir) => {
    const a = join(dir, 'a.txt'),
      b = join(dir, 'b.txt');
    const textA = Array.from({ length: 40 }, (_, i) => `line ${i} of a`).join('\n');
    const textB = 'short b\r\nsecond line\n';
    writeFileSync(a, textA);
    writeFileSync(b, textB);
    const pieces = await collect(readTextPieces([a, b], 50));
    assert.ok(pieces.filter((p) => p.source === a).length > 5, 'a arrives in several pieces');
    for (const p of pieces) assert.ok(p.text.endsWith('\n'), 'each piece ends at a newline');
    assert.is(
      pieces
        .filter((p) => p.source === a)
        .map((p) => p.text)
        .join(''),
      `${textA}\n`,
    );
    assert.is(pieces.find((p) => p.source === b)!.text, 'short b\nsecond line\n', 'CRLF read as LF');

    const T = 16;
    const windows = await collect(tokenWindows(readTextPieces([a, b], 50), chars, { contextSize: T, bos: BOS }));
    // the expected windows, from each whole file at once
    const expected: [string, number, number[]][] = [];
    for (const [src, text] of [
      [a, `${textA}\n`],
      [b, 'short b\nsecond line\n'],
    ] as const) {
      const ids = [BOS, ...chars.encode(text)];
      for (let s = 0; s + T <= ids.length; s += T) expected.push([src, s, ids.slice(s, s + T)]);
    }
    assert.equal(
      windows.map((w) => [w.source, w.start, w.ids]),
      expected,
    );
    // the same windows however the file is cut
    const whole = await collect(tokenWindows(readTextPieces([a, b]), chars, { contextSize: T, bos: BOS }));
    assert.equal(whole, windows);
  }),
);

test('sampleWindows: all windows in order when n covers them; otherwise uniform over windows, seeded', async () => {
  const N = 10;
  async function* ten(): AsyncGenerator<TokenWindow> {
    for (let i = 0; i < N; i++) yield { source: 'f', doc: Math.floor(i / 4), start: (i % 4) * 2, ids: [i, i] };
  }
  const all = await sampleWindows(ten(), 20, new Rng(1));
  assert.equal(
    all.windows.map((w) => w.ids[0]),
    [...Array(N).keys()],
  );
  assert.is(all.seenWindows, N);
  assert.is(all.seenDocuments, 3);
  const a = await sampleWindows(ten(), 3, new Rng('s'));
  const b = await sampleWindows(ten(), 3, new Rng('s'));
  assert.equal(a, b, 'same seed, same sample');
  // each window is kept with probability 3/10: over 4000 draws the counts sit within 4.5 sd of 1200
  const counts = new Array(N).fill(0);
  const draws = 4000;
  for (let s = 0; s < draws; s++) {
    const r = await sampleWindows(ten(), 3, new Rng(`u${s}`));
    assert.is(r.windows.length, 3);
    for (const w of r.windows) counts[w.ids[0]]++;
  }
  const mean = (draws * 3) / N,
    sd = Math.sqrt(draws * 0.3 * 0.7);
  for (const [i, c] of counts.entries()) assert.ok(Math.abs(c - mean) < 4.5 * sd, `window ${i} kept ${c} times, expected ${mean}`);
  // the first windows are not favoured (Algorithm R's bug of drawing j from [0, n) instead of [0, seen])
  assert.ok(Math.abs(counts[0] - counts[N - 1]) < 6 * sd);
});

test(
  'a 200 MB text file streams through windows and the reservoir in bounded memory: a fresh Node with a 128 MB heap, resident memory < 300 MB above its start',
  withTempDir('mi-text-', (dir) => {
    const f = join(dir, 'big.txt');
    const line = `${'the quick brown fox jumps over the lazy dog '.repeat(23)}\n`; // ~1 KB
    const fd = openSync(f, 'w');
    const block = line.repeat(1024); // ~1 MB
    for (let i = 0; i < 200; i++) writeSync(fd, block);
    closeSync(fd);
    // its own process: a test process's heap (other suites, coverage) says nothing about this stream's
    const child = spawnSync(process.execPath, ['--max-old-space-size=128', '--import', 'tsx', CHILD, f], {
      encoding: 'utf-8',
      timeout: 300_000,
    });
    assert.is(child.status, 0, `the stream ran out of its 128 MB heap or failed: ${child.stderr.slice(-1500)}`);
    const r = JSON.parse(child.stdout) as { windows: number; seen: number; rssGrowth: number };
    assert.is(r.windows, 128);
    assert.is(r.seen, Math.floor((block.length * 200 + 1) / 256));
    assert.ok(r.rssGrowth < 300 * 2 ** 20, `resident memory grew by ${(r.rssGrowth / 2 ** 20).toFixed(0)} MB`);
  }),
);

test.run();
