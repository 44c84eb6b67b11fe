// Step 12 (steps/step12-report.ts, report-io.ts writeRunReport) on the quick run: report.html has a
// section for every step that writes a report, no scripts and no external URLs, no id twice; report.md;
// report-index.json the same whatever order the steps ran in.
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { svgRefs } from '../../interp/report/index.ts';
import { loadReports } from '../../steps/report-io.ts';
import { quickRun } from '../helpers/quick-run.ts';
import { readIn } from '../helpers/step-report.ts';

const ROOT = resolve(import.meta.dirname, '../..');

test('step 12: report.html with a section per step, self-contained; report.md', async () => {
  const dir = await quickRun();
  const html = readFileSync(join(dir, 'report.html'), 'utf8');
  for (let i = 0; i < 15; i++) if (i !== 12) assert.ok(html.includes(`id="step-${i}"`), `report.html has a section for step ${i}`);
  assert.not.match(html, /<script|https?:\/\/(?!www\.w3\.org)/, 'no scripts and no external URLs');
  assert.ok(readFileSync(join(dir, 'report.md'), 'utf8').startsWith('# '));
});

test('step 12: report.html defines no id twice and every reference resolves in it (figures from any process)', async () => {
  const html = readFileSync(join(await quickRun(), 'report.html'), 'utf8');
  const ids = Array.from(html.matchAll(/\sid="([^"]+)"/g), (m) => m[1]);
  const dup = ids.filter((id, i) => ids.indexOf(id) !== i);
  assert.equal(dup, [], `ids defined more than once: ${[...new Set(dup)].slice(0, 5).join(', ')}`);
  const svgDefs = ids.filter((id) => !id.startsWith('step-'));
  assert.ok(svgDefs.length > 0, 'the figures define ids (colour legends), so the check has something to check');
  const defined = new Set(ids);
  for (const r of svgRefs(html)) assert.ok(defined.has(r), `#${r} is referred to but not defined`);
});

test('step 12: report-index.json counts the steps before it; re-run after steps 13-14, its outputs are the same', async () => {
  const dir = await quickRun();
  const index = readIn<{ html: string; figures: number; steps: number }>(join(dir, 'step-12-report'), 'report-index.json');
  const before = loadReports(dir).filter(({ report }) => report.step < 12);
  assert.equal(index, {
    html: 'report.html',
    steps: before.length,
    figures: before.reduce((n, { report }) => n + report.figures.length, 0),
  });
  assert.ok(index.figures > 0);
  // step 12 again in a copy, now that 13-14 have finished (in the quick run it ran before them)
  const copy = join(mkdtempSync(join(tmpdir(), 'mi-step12-')), 'run');
  try {
    cpSync(dir, copy, { recursive: true });
    const r = spawnSync(
      process.execPath,
      ['--import', 'tsx', join(ROOT, 'steps/run.ts'), '--step', '12', '--quick', '--backend', 'cpu', '--out', copy],
      {
        cwd: ROOT,
        encoding: 'utf8',
        timeout: 120_000,
      },
    );
    assert.is(r.status, 0, r.stderr);
    assert.ok(
      loadReports(copy).some(({ report }) => report.step > 12),
      'steps 13-14 are finished in the copy',
    );
    assert.equal(readIn(join(copy, 'step-12-report'), 'report-index.json'), index);
    // report.html covers the whole run either way; only its creation time and run directory differ
    const norm = (d: string) =>
      readFileSync(join(d, 'report.html'), 'utf8')
        .split(d)
        .join('<run>')
        .replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/, '<created>');
    assert.ok(norm(copy) === norm(dir), 'report.html is the same as the one written after steps 13-14 in the quick run');
  } finally {
    rmSync(join(copy, '..'), { recursive: true, force: true });
  }
});

test.run();
