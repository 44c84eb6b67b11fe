// The vectorised float32 math of engine/wasm/math.ts against the float64 functions it stands for
// (engine/elementwise.ts's definitions, Math.exp / Math.log / Math.tanh / Math.log1p), rounded
// to float32: the reference is the correctly rounded float32 result, up to the float64 functions'
// own error (well under 2^-29 relative), which the bounds below absorb.
//
// Sweep: every 257th float32 bit pattern (about 16.7 million inputs, both signs, zeros to NaNs; MI_MATH_STEP
// sets another step, MI_MATH_REPORT=1 prints each function's worst error),
// through a module that maps each emitter over an array (lane tails included). Each result must be
// within `ulps` units in the last place of the reference (ulp: engine/wasm/math.ts's definition,
// 2^-149 for subnormal references), plus `abs` absolute where stated (silu_grad near its zero,
// where float32 evaluation of 1 + x (1 - s) cancels: about 2^-24 absolute, many ulps there). The
// bounds are the measured maxima of the denser sweep in engine/wasm/math.ts's header, rounded up:
//   exp 1, log 1, log1p 1 (finite inputs >= 0, -0 aside), tanh 1, sigmoid 2, silu 3, softplus 2, rsqrt 1,
//   sqrt 0, silu_grad 3 + 2^-26 absolute.
// Results that are NaN, infinite or zero must be exactly that (with the sign of zero), and edge
// inputs (zeros, infinities, NaN, extremes, subnormals, the ends of exp's range) are checked the same.
// expNormal (exp without subnormal results) must give exp's bits, or 0 where x log2e rounds to -126
// or below; exp(0) = 1 exactly (the scan's decay exp(0 A) keeps a state as it is).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { UNARY } from '../../../engine/elementwise.ts';
import { type Local, ModuleBuilder } from '../../../engine/wasm/assembler.ts';
import { mapLoop } from '../../../engine/wasm/loops.ts';
import { VecMath } from '../../../engine/wasm/math.ts';
import { WasmHeap } from '../../../engine/wasm/memory.ts';
import { EDGE_VALUES, same, ulp } from './f32-check.ts';

const test = suite('wasm math');

interface Fn {
  emit: (m: VecMath, x: Local) => void;
  ref: (x: number) => number;
  ulps: number;
  abs?: number;
  /** inputs outside are skipped */
  domain?: (x: number) => boolean;
}

const FNS: Record<string, Fn> = {
  exp: { emit: (m, x) => m.exp(x), ref: Math.exp, ulps: 1 },
  expNormal: { emit: (m, x) => m.expNormal(x), ref: Math.exp, ulps: 1, domain: (x) => !(x < -86.98) },
  log: { emit: (m, x) => m.log(x), ref: Math.log, ulps: 1 },
  log1p: {
    emit: (m, x) => m.log1p(x),
    ref: Math.log1p,
    ulps: 1,
    domain: (x) => (x >= 0 && x < Infinity && !Object.is(x, -0)) || Number.isNaN(x),
  },
  tanh: { emit: (m, x) => m.tanh(x), ref: Math.tanh, ulps: 1 },
  sigmoid: { emit: (m, x) => m.sigmoid(x), ref: UNARY.sigmoid.cpu, ulps: 2 },
  silu: { emit: (m, x) => m.silu(x), ref: UNARY.silu.cpu, ulps: 3 },
  silu_grad: { emit: (m, x) => m.siluGrad(x), ref: UNARY.silu_grad.cpu, ulps: 3, abs: 2 ** -24 },
  softplus: { emit: (m, x) => m.softplus(x), ref: UNARY.softplus.cpu, ulps: 2 },
  rsqrt: { emit: (m, x) => m.rsqrt(x), ref: UNARY.rsqrt.cpu, ulps: 1 },
  sqrt: { emit: (m, x) => m.f.f32x4.sqrt(x), ref: Math.sqrt, ulps: 0 },
};

const mb = new ModuleBuilder();
mb.importMemory({ initial: 0, maximum: 65536, shared: true });
for (const [name, fn] of Object.entries(FNS))
  mb.function(
    name,
    ['i32', 'i32', 'i32'],
    [],
    (f, x, out, n) => {
      const m = new VecMath(f);
      mapLoop(f, [x], out, n, 2, ([v]) => fn.emit(m, v));
    },
    { export: true },
  );
const heap = new WasmHeap({ initialPages: 512 });
const exports = new WebAssembly.Instance(mb.compile(), { env: { memory: heap.memory } }).exports as Record<
  string,
  (...a: number[]) => void
>;

const CHUNK = 1 << 20;
const xs = heap.allocF32(CHUNK),
  out = heap.allocF32(CHUNK);
const xBits = new Uint32Array(xs.buffer, xs.byteOffset, CHUNK);

/** The worst error found, in ulps beyond the absolute allowance, and where. */
interface Worst {
  ulps: number;
  x: number;
  got: number;
  want: number;
}

function check(name: string, n: number, worst: Worst): void {
  const fn = FNS[name];
  exports[name](xs.byteOffset, out.byteOffset, n);
  for (let i = 0; i < n; i++) {
    const x = xs[i];
    if (fn.domain && !fn.domain(x)) continue;
    const want = Math.fround(fn.ref(x)),
      got = out[i];
    if (same(got, want)) continue;
    if (Number.isNaN(want) || Number.isNaN(got) || !Number.isFinite(want) || !Number.isFinite(got) || want === 0 || got === 0) {
      assert.unreachable(`${name}(${x}) = ${got}, want ${want} exactly`);
    }
    const e = (Math.abs(got - want) - (fn.abs ?? 0)) / ulp(want);
    if (e > worst.ulps) Object.assign(worst, { ulps: e, x, got, want });
  }
}

const STEP = Number(process.env.MI_MATH_STEP ?? 257);
const REPORT = process.env.MI_MATH_REPORT === '1';
const EDGES = [
  ...EDGE_VALUES,
  88.72283,
  88.72284,
  88.7229,
  89,
  89.5,
  -86.99,
  -86.9905,
  -86.991,
  -87.33654,
  -87.3366,
  -87.5,
  -103.2789,
  -103.97,
  -104,
  -110,
  -119.9,
  -120,
  -120.1,
  -150,
];

for (const name of Object.keys(FNS)) {
  test(`${name}: every ${STEP}th float32 bit pattern and the edge values, within ${FNS[name].ulps} ulp${FNS[name].abs ? ` + ${FNS[name].abs} absolute` : ''}`, () => {
    const worst: Worst = { ulps: 0, x: 0, got: 0, want: 0 };
    let b = 0;
    while (b < 2 ** 32) {
      let k = 0;
      for (; k < CHUNK && b < 2 ** 32; k++, b += STEP) xBits[k] = b;
      check(name, k, worst);
    }
    xs.set(EDGES.flatMap((v) => [v, -v]));
    check(name, 2 * EDGES.length, worst);
    if (REPORT) console.log(`  ${name}: worst ${worst.ulps.toFixed(3)} ulp at ${worst.x} (${worst.got}, want ${worst.want})`);
    assert.ok(
      worst.ulps <= FNS[name].ulps,
      `${name}(${worst.x}) = ${worst.got}, want ${worst.want}: ${worst.ulps.toFixed(2)} ulp > ${FNS[name].ulps}`,
    );
  });
}

test("expNormal: exp's bits, or 0 where x log2e rounds to -126 or below; exp(+-0) = expNormal(+-0) = 1", () => {
  const same32 = (a: number, b: number) => Object.is(a, b) || (Number.isNaN(a) && Number.isNaN(b));
  const got = new Float32Array(CHUNK);
  let b = 0,
    differ = 0;
  while (b < 2 ** 32) {
    let k = 0;
    for (; k < CHUNK && b < 2 ** 32; k++, b += STEP) xBits[k] = b;
    if (b >= 2 ** 32) {
      // and the edges, the last chunk's tail
      const e = EDGES.flatMap((v) => [v, -v]).slice(0, CHUNK - k);
      xs.set(e, k);
      k += e.length;
    }
    exports.expNormal(xs.byteOffset, out.byteOffset, k);
    got.set(out.subarray(0, k));
    exports.exp(xs.byteOffset, out.byteOffset, k);
    for (let i = 0; i < k; i++) {
      if (same32(got[i], out[i])) continue;
      differ++;
      const x = xs[i];
      assert.ok(Object.is(got[i], 0) && x * Math.LOG2E < -125.49, `expNormal(${x}) = ${got[i]}, exp ${out[i]}`);
    }
  }
  assert.ok(differ > 0, 'the sweep reaches the flushed range');
  xs.set([0, -0, 1e-30, -1e-30]);
  for (const e of ['exp', 'expNormal']) {
    exports[e](xs.byteOffset, out.byteOffset, 4);
    assert.equal([...out.subarray(0, 4)], [1, 1, 1, 1], e);
  }
});

test('tails: n % 4 = 1, 2, 3 compute the same lanes as whole vectors and write nothing past n', () => {
  const n = 11;
  for (let i = 0; i < 16; i++) xs[i] = (i - 7) * 0.37;
  exports.exp(xs.byteOffset, out.byteOffset, 16);
  const whole = out.slice(0, 16);
  for (const len of [1, 2, 3, 5, 6, 7, n]) {
    out.fill(NaN, 0, 16);
    exports.exp(xs.byteOffset, out.byteOffset, len);
    for (let i = 0; i < 16; i++) assert.ok(i < len ? same(out[i], whole[i]) : Number.isNaN(out[i]), `len ${len}: [${i}]`);
  }
});

test.run();
