// The CPU backend is deterministic: a computation through many ops (linear, silu, the selective
// scan, rmsNorm, crossEntropy) and its gradients, run twice, gives the same bits.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as mi from '../../../engine/index.ts';

test('determinism: the same computation twice gives identical bits, values and gradients', () => {
  const once = () =>
    mi.tidy(() => {
      const r = new mi.Rng('determinism');
      const x = mi.randn([2, 5, 3], r.fork('x'), { requiresGrad: true });
      const W = mi.randn([4, 3], r.fork('W'), { requiresGrad: true });
      const h = mi.silu(mi.linear(x, W));
      const s = mi.selectiveScan({
        x: mi.slice(h, 2, 0, 3),
        delta: mi.softplus(mi.slice(h, 2, 1, 4)),
        A: mi.neg(mi.exp(mi.randn([3, 2], r.fork('A')))),
        B: mi.slice(h, 2, 0, 2),
        C: mi.slice(h, 2, 2, 4),
        deltaSoftplus: true,
      });
      const loss = mi.crossEntropy(mi.rmsNorm(s.y, mi.ones([3])), mi.randint([2, 5], 0, 3, r.fork('t')));
      const g = mi.backwardFrom(loss);
      return [loss, g.get(x)!, g.get(W)!].map((t) => new Uint8Array((t.dataSync() as Float32Array).buffer));
    });
  const a = once(),
    b = once();
  for (let i = 0; i < a.length; i++) assert.equal([...a[i]], [...b[i]], `output ${i} bit for bit`);
  assert.ok(
    a[1].some((v) => v !== 0),
    'the gradient is not trivially zero',
  );
});

test.run();
