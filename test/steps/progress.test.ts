// steps/progress.ts: in a log, at most one line per tenth of a piece of work plus the final one; on
// a terminal, one line rewritten in place, throttled, ended with a newline when the work is done.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Progress, progressLine } from '../../steps/progress.ts';

function sink(isTTY: boolean) {
  const writes: string[] = [];
  return { writes, out: { isTTY, write: (s: string) => writes.push(s) } };
}

test('not a terminal: at most one line per tenth of the work, plus the final one', () => {
  const { writes, out } = sink(false);
  const p = new Progress(out);
  for (let i = 0; i <= 1350; i++) p.update('train', i, 1350);
  assert.ok(writes.length <= 11, `${writes.length} lines`);
  assert.ok(
    writes.every((w) => w.endsWith('\n') && !w.includes('\r')),
    'plain lines',
  );
  assert.is(writes.at(-1), `${progressLine('train', 1350, 1350)}\n`);
  p.update('train', 1350, 1350);
  assert.is(writes.length, 11, 'the final line once');
});

test('not a terminal: the label may change within a series; a count going back starts a new one', () => {
  const { writes, out } = sink(false);
  const p = new Progress(out);
  for (let i = 0; i < 100; i++) p.update(`collect model ${Math.floor(i / 50)}`, i, 100);
  p.update('collect model 1', 100, 100);
  assert.ok(writes.length <= 11, `${writes.length} lines for one series`);
  assert.match(writes.at(-1)!, /collect model 1 .* 100\/100/);
  const before = writes.length;
  for (let i = 0; i <= 10; i++) p.update('patching', i, 10);
  assert.is(writes.length - before, 11, 'a new series, each tenth once');
  p.update('again', 3, 10);
  assert.is(writes.length - before, 12, 'a count going back starts a new series');
});

test('a terminal: one line rewritten in place, at most every 100 ms, ended by the final update or end()', () => {
  const { writes, out } = sink(true);
  let now = 0;
  const p = new Progress(out, () => now);
  for (let i = 0; i < 50; i++) {
    p.update('SAE', i, 50);
    now += 10;
  }
  assert.ok(writes.length >= 4 && writes.length <= 6, `${writes.length} writes in 500 ms`);
  assert.ok(
    writes.every((w) => w.startsWith('\r\x1b[2K') && !w.endsWith('\n')),
    'rewritten in place',
  );
  p.update('SAE', 50, 50);
  assert.is(writes.at(-1), `\r\x1b[2K${progressLine('SAE', 50, 50)}\n`);
  p.end();
  assert.ok(!writes.at(-1)!.startsWith('\n'), 'no extra newline after a finished line');
  const n = writes.length;
  now += 1000;
  p.update('probes', 3, 10);
  p.end();
  assert.equal(writes.slice(n), [`\r\x1b[2K${progressLine('probes', 3, 10)}`, '\n']);
});

test('the bar', () => {
  assert.is(progressLine('x', 0, 4), `  x [${'.'.repeat(24)}] 0/4`);
  assert.is(progressLine('x', 2, 4), `  x [${'#'.repeat(12)}${'.'.repeat(12)}] 2/4`);
  assert.is(progressLine('x', 0, 0), `  x [${'.'.repeat(24)}] 0/0`);
});

test.run();
