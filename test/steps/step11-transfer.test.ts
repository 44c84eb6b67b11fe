// Step 11 (steps/step11-transfer.ts) on the quick run: cross-task transfer (SAEs, probes,
// circuits), checked for content: the in-task diagonal, accuracies in [0, 1], intervals ordered,
// figures present, claims complete.
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { quickRun } from '../helpers/quick-run.ts';
import { assertInInterval, assertInUnit, checkOrderedReport, readIn } from '../helpers/step-report.ts';

interface Transfer {
  tasks: string[];
  sae: { from: string; to: string; fvu: number; fvuOwn: number; ratio: number; lo: number; hi: number; l0: number }[];
  probes: { from: string; to: string; accuracy: number; lo: number; hi: number; control: number; chance: number }[];
  circuits: { from: string; to: string; drop: number; ownDrop: number; ratio: number }[];
}

test('step 11: transfer matrices with the in-task diagonal', async () => {
  const dir = join(await quickRun(), 'step-11-transfer');
  const t = readIn<Transfer>(dir, 'transfer.json');
  const n = t.tasks.length;
  assert.is(t.probes.length, n * n, 'every ordered pair of tasks, diagonal included');
  for (const p of t.probes) {
    assertInUnit(p.accuracy, 'probe accuracy');
    assertInUnit(p.control, 'control accuracy');
    assertInInterval([p.lo, p.hi], p.accuracy, `${p.from}->${p.to} probe`);
    assert.is(p.chance, 0.5);
  }
  // the diagonal is the in-task value: B's own SAE on B's activations
  for (const s of t.sae) {
    assert.ok(s.fvu >= 0 && s.l0 >= 0);
    if (s.from === s.to) {
      assert.ok(Math.abs(s.fvu - s.fvuOwn) < 1e-12);
      assert.ok(Math.abs(s.ratio - 1) < 1e-9);
    }
    assertInInterval([s.lo, s.hi], s.ratio, `${s.from}->${s.to} SAE ratio`);
  }
  assert.ok(t.sae.length > 0, 'SAE transfer measured');
  for (const c of t.circuits) {
    if (c.from === c.to) assert.ok(Math.abs(c.drop - c.ownDrop) < 1e-12, 'diagonal = own circuit');
    assertInUnit(Math.abs(c.drop), 'accuracy drop');
  }
  checkOrderedReport(dir, 11);
});

test.run();
