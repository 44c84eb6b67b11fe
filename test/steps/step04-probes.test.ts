// Step 4 (steps/step04-probes.ts) on the quick run: the content of probes.json, the figures and
// the claims.
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadCollections, loadProbeRecords, loadSaeRecords, PROBES_DIR } from '../../steps/artefacts.ts';
import { quickRun } from '../helpers/quick-run.ts';
import { checkControlledReport } from '../helpers/step-report.ts';

test('step 4: probes held-out scores in range, selected dims valid, the induction trigger probe beats its control', async () => {
  const run = await quickRun();
  const probes = loadProbeRecords(run);
  assert.ok(probes.length > 0);
  const saes = loadSaeRecords(run);
  const collections = loadCollections(run);
  assert.ok(
    probes.some((p) => p.features === 'sae'),
    'probes on SAE latents',
  );
  for (const p of probes) {
    const name = `${p.task}-s${p.seed} ${p.hook} ${p.features} ${p.variable}`;
    if (p.metric === 'accuracy') {
      assert.is(p.kind, 'logistic');
      assert.ok(p.heldOut >= 0 && p.heldOut <= 1 && p.control! >= 0 && p.control! <= 1, name);
      assert.ok(p.chance >= 0.5 && p.chance <= 1, `${name}: chance ${p.chance}`);
    } else {
      assert.ok(p.kind === 'lasso' || p.kind === 'elasticnet');
      assert.ok(p.heldOut <= 1 && Number.isFinite(p.heldOut) && p.control! <= 1, name);
    }
    assert.ok(p.interval![0] <= p.heldOut && p.heldOut <= p.interval![1], `${name}: interval`);
    const cols =
      p.features === 'activations'
        ? collections.find((c) => c.task === p.task && c.seed === p.seed)!.hooks.find((h) => h.name === p.hook)!.dim
        : saes.find((s) => s.task === p.task && s.seed === p.seed && s.hook === p.hook && s.kind === p.saeKind)!.latents;
    assert.is(p.coefficients.length, p.selected.length);
    for (let i = 0; i < p.selected.length; i++) {
      assert.ok(Number.isInteger(p.selected[i]) && p.selected[i] >= 0 && p.selected[i] < cols, `${name}: dim ${p.selected[i]} of ${cols}`);
      assert.ok(p.coefficients[i] !== 0 && Number.isFinite(p.coefficients[i]));
      if (i) assert.ok(p.selected[i] > p.selected[i - 1]);
    }
  }
  const trigger = probes.filter((p) => p.task === 'induction' && p.variable === 'isTrigger' && p.features === 'activations');
  assert.ok(trigger.length > 0, 'induction isTrigger probes');
  for (const p of trigger) {
    assert.ok(
      p.heldOut > p.control! && p.interval![0] > p.controlInterval![1],
      `isTrigger ${p.hook} s${p.seed}: ${p.heldOut} vs control ${p.control}`,
    );
    assert.ok(p.heldOut > 0.8 && p.selected.length > 0);
  }
  checkControlledReport(join(run, PROBES_DIR));
});

test.run();
