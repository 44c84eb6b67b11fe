// interp/claims.ts: the run-wide statistics policy, on families whose Holm and BH values are worked
// out by hand below, so that correcting within a subset, not correcting, using BH for the decision
// or ignoring the effect condition each flip at least one flag.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { correctFamily, floorBinds, floorSurvives, pending, pText, verdict } from '../../interp/claims.ts';
import type { Claim } from '../../interp/report/types.ts';

const claim = (statement: string, p: number | undefined, effect: boolean, pFloor?: number): Claim => ({
  statement,
  estimate: 1,
  interval: [0.5, 1.5],
  level: 0.95,
  test: 'test',
  ...(p !== undefined ? { p } : {}),
  ...(pFloor !== undefined ? { pFloor } : {}),
  control: 'control',
  ...pending(effect, 'interval above the control'),
});

const close = (a: number | undefined, b: number, what: string) =>
  assert.ok(a !== undefined && Math.abs(a - b) < 1e-12, `${what}: ${a} vs ${b}`);

test('correctFamily: supported = effect condition and Holm across the whole family below 0.05', () => {
  const family = [
    claim('a', 0.001, true),
    claim('b', 0.02, true),
    claim('c', 0.004, false),
    claim('d', 0.03, true),
    claim('e', 0.3, true),
    claim('f', undefined, true),
  ];
  const out = correctFamily(family);
  // m = 5 tested. Holm, sorted: 0.001 x 5 = 0.005, 0.004 x 4 = 0.016, 0.02 x 3 = 0.06,
  // max(0.03 x 2, 0.06) = 0.06, max(0.3, 0.06) = 0.3.
  const holm = [0.005, 0.06, 0.016, 0.06, 0.3];
  // BH, from the top: 0.3, min(0.03 x 5/4, .) = 0.0375, min(0.02 x 5/3, .) = 0.0333, 0.004 x 5/2 = 0.01, 0.001 x 5 = 0.005.
  const bh = [0.005, 0.1 / 3, 0.01, 0.0375, 0.3];
  holm.forEach((h, i) => close(out[i].pAdjusted, h, `Holm ${family[i].statement}`));
  bh.forEach((q, i) => close(out[i].qBh, q, `BH ${family[i].statement}`));
  // b and d have raw p < 0.05 and their BH q < 0.05, but Holm 0.06: not supported; c survives
  // Holm but fails its effect condition; f has no p-value.
  assert.equal(
    out.map((c) => c.supported),
    [true, false, false, false, false, false],
  );
  assert.equal(
    out.map((c) => c.status),
    ['corrected', 'corrected', 'corrected', 'corrected', 'corrected', 'untested'],
  );
  assert.is(out[5].pAdjusted, undefined);
  assert.match(out[0].correction!, /5 claims/);
  // the input is not modified, and correcting twice gives the same flags (idempotent)
  assert.is(family[0].status, 'pending');
  assert.equal(correctFamily(out), out);
});

test('correctFamily: a claim corrected in a larger family loses what a smaller family gave it', () => {
  const alone = correctFamily([claim('x', 0.01, true)]);
  assert.ok(alone[0].supported);
  const inRun = correctFamily([claim('x', 0.01, true), ...Array.from({ length: 9 }, (_, i) => claim(`n${i}`, 0.5, true))]);
  close(inRun[0].pAdjusted, 0.1, 'Holm over 10');
  assert.not.ok(inRun[0].supported);
});

test('correctFamily: bad p-values and floors are one error naming the claim', () => {
  assert.throws(() => correctFamily([claim('a', Number.NaN, true)]), /claim 1 \("a"\): p is NaN/);
  assert.throws(() => correctFamily([claim('a', 0, true)]), /p is 0, not in \(0, 1\]/);
  assert.throws(() => correctFamily([claim('a', 0.01, true, 0.02)], ['step 3 claim 1']), /step 3 claim 1: pFloor 0.02 is not in/);
  assert.throws(() => pending('yes' as unknown as boolean, 'c'), /effect must be a boolean/);
  assert.throws(() => pending(true, ''), /condition/);
});

test('floors: where p sits at 1/(n+1) the report says so; whether a floor can survive a family', () => {
  const atFloor = claim('a', 1 / 201, true, 1 / 201);
  const above = claim('b', 3 / 201, true, 1 / 201);
  assert.ok(floorBinds(atFloor));
  assert.not.ok(floorBinds(above));
  assert.not.ok(floorBinds(claim('c', 0.01, true)));
  assert.is(pText(atFloor, String), 'p <= 1/201 (floor)');
  // three seeds' rank floors multiplied, or an asymptotic floor: not a 1/n fraction
  assert.is(
    pText({ p: 1e-15, pFloor: 1e-15 }, (v) => v.toExponential(1)),
    'p <= 1.0e-15 (floor)',
  );
  assert.is(
    pText(above, (v) => v.toFixed(4)),
    'p = 0.0149',
  );
  // 86 claims x 1/201 = 0.43: a floor that cannot survive; 86 x 1/20001 = 0.0043 <= 0.005 can
  assert.not.ok(floorSurvives(1 / 201, 86));
  assert.ok(floorSurvives(1 / 20001, 86));
  assert.not.ok(floorSurvives(1 / 20001, 101), '101 / 20001 = 0.00505 > 0.005');
  assert.is(verdict(atFloor), 'Pending (not yet corrected across the run)');
  assert.is(verdict(correctFamily([atFloor])[0]), 'Supported');
  assert.is(verdict(correctFamily([claim('u', undefined, true)])[0]), 'Not supported (no p-value)');
});

test.run();
