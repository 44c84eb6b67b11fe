// Claims over seeds (interp/seeds.ts): the t interval, the exact sum-of-ranks test and Fisher's
// combination, against values computed elsewhere (scipy) or by brute force.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Rng } from '../../engine/random.ts';
import { acrossSeeds, fisherP, seedClaimFields, seedInterval, sumOfRanksP } from '../../interp/seeds.ts';
import { studentTCdf, studentTQuantile } from '../../interp/stats.ts';
import { firstNonFiniteJson } from '../../steps/finite.ts';

const close = (a: number, b: number, tol: number, what: string) => assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b}`);

test("Student's t: closed forms (df 1 Cauchy, df 2) and scipy's quantiles", () => {
  close(studentTCdf(-1.5, 1), 0.5 + Math.atan(-1.5) / Math.PI, 1e-12, 'df 1');
  close(studentTCdf(0.7, 2), 0.5 + 0.7 / (2 * Math.sqrt(2.49)), 1e-12, 'df 2');
  close(studentTCdf(-1.5, 3), 0.11529193262241147, 1e-10, 'df 3 (scipy)');
  // scipy.stats.t.ppf(0.975, [2, 3, 5])
  [4.30265273, 3.18244631, 2.57058184].forEach((v, i) => close(studentTQuantile(0.975, [2, 3, 5][i]), v, 1e-7, `t_0.975,${[2, 3, 5][i]}`));
  close(studentTQuantile(0.025, 2), -4.30265273, 1e-7, 'lower tail');
});

test('seed interval: mean +- t sd / sqrt(n) (scipy), NaN for one seed', () => {
  const [lo, hi] = seedInterval([0.3, 0.1, 0.25]);
  close(lo, -0.04189058396044648, 1e-9, 'lo');
  close(hi, 0.47522391729377983, 1e-9, 'hi');
  assert.ok(seedInterval([0.3]).every(Number.isNaN));
  // "no interval" on purpose, written as [null, null]: the step-output guard lets it through, not a bare NaN pair
  assert.is(firstNonFiniteJson({ interval: seedInterval([0.3]) }), null);
  assert.ok(firstNonFiniteJson({ interval: [Number.NaN, Number.NaN] }));
  assert.is(JSON.stringify(seedInterval([0.3])), '[null,null]');
});

test('sum of ranks: one seed is the rank p-value; several match brute-force enumeration', () => {
  const one = sumOfRanksP([{ ge: 3, n: 19 }]);
  close(one.p, 4 / 20, 1e-15, 'one seed');
  close(one.pFloor, 1 / 20, 1e-15, 'floor');
  // enumerate every rank triple for n = 4, 6, 9 controls
  const ns = [4, 6, 9];
  for (const ge of [
    [0, 0, 0],
    [1, 0, 3],
    [4, 6, 9],
    [2, 5, 0],
  ]) {
    let atMost = 0,
      all = 0;
    for (let a = 0; a <= ns[0]; a++)
      for (let b = 0; b <= ns[1]; b++)
        for (let c = 0; c <= ns[2]; c++) {
          all++;
          if (a + b + c <= ge[0] + ge[1] + ge[2]) atMost++;
        }
    const r = sumOfRanksP(ge.map((g, i) => ({ ge: g, n: ns[i] })));
    close(r.p, atMost / all, 1e-12, `ranks ${ge}`);
    close(r.pFloor, 1 / all, 1e-15, 'floor');
  }
  assert.throws(() => sumOfRanksP([{ ge: 5, n: 4 }]), /seed 0 has 5 of 4 controls/);
});

test('sum of ranks is uniform-or-better under the null (a circuit exchangeable with its controls)', () => {
  const rng = new Rng(7);
  let below = 0;
  const reps = 4000;
  for (let r = 0; r < reps; r++) {
    const ranks = [0, 1, 2].map(() => ({ ge: rng.int(0, 20), n: 19 }));
    if (sumOfRanksP(ranks).p <= 0.1) below++;
  }
  // exact test: P(p <= 0.1) <= 0.1 (the discrete sum puts a little below); a one-sided binomial margin
  assert.ok(below / reps <= 0.1 + 3 * Math.sqrt(0.09 / reps), `${below / reps}`);
  assert.ok(below / reps >= 0.07, `not far too conservative: ${below / reps}`);
});

test("Fisher's combination matches scipy.stats.combine_pvalues", () => {
  close(fisherP([0.01, 0.2, 0.03]).p, 0.0034783020092477492, 1e-12, 'fisher');
  close(fisherP([0.4]).p, 0.4, 1e-12, 'one p');
  const f = fisherP([0.5, 0.5], [0.001, 0.001]);
  close(f.pFloor!, 0.001 ** 2 * (1 - 2 * Math.log(0.001)), 1e-15, 'floor of two');
});

test('acrossSeeds: ranks when every seed has one, Fisher otherwise, untested below minSeeds', () => {
  const seeds = [0.3, 0.1, 0.25].map((value, seed) => ({
    seed,
    model: `t-s${seed}`,
    value,
    p: (1 + seed) / 20,
    pFloor: 1 / 20,
    rank: { ge: seed, n: 19 },
  }));
  const r = acrossSeeds(seeds, { minSeeds: 3 });
  close(r.p!, sumOfRanksP(seeds.map((s) => s.rank)).p, 0, 'ranks');
  close(r.pFloor!, 1 / 8000, 1e-15, 'rank floor');
  const f = acrossSeeds(
    seeds.map(({ rank: _, ...s }) => s),
    { minSeeds: 3 },
  );
  close(f.p!, fisherP([0.05, 0.1, 0.15], [0.05, 0.05, 0.05]).p, 0, 'fisher');
  const few = acrossSeeds(seeds.slice(0, 2), { minSeeds: 3 });
  assert.is(few.p, undefined);
  assert.not.ok(few.enough);
  const claim = seedClaimFields(r);
  assert.is(claim.effectHolds, false, 'the t interval reaches below 0');
  assert.is(claim.perSeed.length, 3);
  assert.ok(
    seedClaimFields(
      acrossSeeds(
        seeds.map((s) => ({ ...s, value: s.value + 1 })),
        { minSeeds: 3 },
      ),
    ).effectHolds,
  );
});

test.run();
