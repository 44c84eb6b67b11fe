// Step 5 (steps/step05-circuits.ts) on the quick run: circuits on the residual stream and on the
// SSM state, each with controls of equal size; attribution maps; figures.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import type { StepReport } from '../../interp/report/index.ts';
import type { Circuit } from '../../steps/artefacts.ts';
import { QUICK_OVERRIDES } from '../../steps/config.ts';
import { quickRun } from '../helpers/quick-run.ts';
import { checkFigures, readIn } from '../helpers/step-report.ts';

test('step 5: circuits on the residual stream and on the SSM state, each with controls of equal size', async () => {
  const dir = join(await quickRun(), 'step-05-circuits');
  const circuits = readIn<Circuit[]>(dir, 'circuits.json');
  assert.ok(
    circuits.some((c) => c.hook.endsWith('hook_resid_post')),
    'a residual circuit',
  );
  const state = circuits.filter((c) => c.hook.endsWith('.mixer.hook_h'));
  assert.ok(state.length > 0, 'a state circuit');
  assert.ok(
    state.every(
      (c) =>
        (typeof c.positions === 'object' && !Array.isArray(c.positions) && c.positions.label === 'sourcePos') || c.task !== 'induction',
    ),
  );
  for (const c of circuits) {
    const size = c.directions?.length ?? c.channels.length;
    assert.ok(size > 0, `${c.id} is not empty`);
    assert.ok(c.controls.length > 0, `${c.id} has controls`);
    for (const k of c.controls) {
      assert.is(k.directions?.length ?? k.channels.length, size, `${c.id}: a control of equal size`);
      if (!c.directions) assert.is(new Set(k.channels).size, size);
    }
  }
  // matched controls: as many as the config asks, never sharing a channel with the circuit
  for (const c of circuits) {
    assert.is(c.controls.length, QUICK_OVERRIDES.circuit!.controls!, c.id);
    if (!c.directions)
      for (const k of c.controls)
        assert.ok(
          k.channels.every((ch) => !c.channels.includes(ch)),
          `${c.id}: disjoint control`,
        );
  }
  // attribution patching is a selection source, and its prediction is checked against real patches
  assert.ok(
    circuits.some((c) => c.source === 'attribution-patching'),
    'attribution-patching circuits',
  );
  const check = readIn<{ correlations: { r: number; n: number }[]; points: { predicted: number; actual: number }[] }>(
    dir,
    'attribution-patching-check.json',
  );
  assert.ok(check.correlations.length > 0 && check.correlations.every((c) => Number.isFinite(c.r) && c.n > 1));
  assert.ok(check.points.every((p) => Number.isFinite(p.predicted) && Number.isFinite(p.actual)));
  const attribution = readIn<{ values: number[] }[]>(dir, 'attribution.json');
  assert.ok(attribution.length > 0 && attribution.every((a) => a.values.every(Number.isFinite)));
  checkFigures(dir, readIn<StepReport>(dir, 'report.json'));
});

test.run();
