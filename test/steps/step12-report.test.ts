// Step 12 (steps/step12-report.ts, report-io.ts writeRunReport) on the quick run: report.html has a
// section for every step that writes a report, no scripts and no external URLs; report.md.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { quickRun } from '../helpers/quick-run.ts';
import { readIn } from '../helpers/step-report.ts';

test('step 12: report.html with a section per step, self-contained; report.md', async () => {
  const dir = await quickRun();
  const html = readFileSync(join(dir, 'report.html'), 'utf8');
  for (let i = 0; i < 15; i++) if (i !== 12) assert.ok(html.includes(`id="step-${i}"`), `report.html has a section for step ${i}`);
  assert.not.match(html, /<script|https?:\/\/(?!www\.w3\.org)/, 'no scripts and no external URLs');
  assert.ok(readFileSync(join(dir, 'report.md'), 'utf8').startsWith('# '));
});

test('step 12: report-index.json names the report it wrote, with the steps finished before it', async () => {
  const dir = await quickRun();
  const index = readIn<{ html: string; figures: number; steps: number }>(join(dir, 'step-12-report'), 'report-index.json');
  assert.is(index.html, join(dir, 'report.html'));
  assert.ok(index.steps >= 12, `${index.steps} steps`);
  assert.ok(index.figures > 0);
});

test.run();
