// The WebAssembly assembler (engine/wasm/encoding.ts, engine/wasm/assembler.ts): LEB128 against
// byte sequences worked out by hand from the spec's definition (and the DWARF / Wikipedia examples),
// then modules built with it, validated by WebAssembly.validate, instantiated and run: scalar
// arithmetic, loops, SIMD lanes, and an imported shared memory.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { type FunctionBuilder, type Local, ModuleBuilder } from '../../../engine/wasm/assembler.ts';
import { sleb, sleb32, uleb } from '../../../engine/wasm/encoding.ts';

const test = suite('wasm assembler');

const bytes = (f: (out: number[]) => void) => {
  const out: number[] = [];
  f(out);
  return out;
};

test('unsigned LEB128: known encodings', () => {
  const cases: [number | bigint, number[]][] = [
    [0, [0x00]],
    [1, [0x01]],
    [127, [0x7f]],
    [128, [0x80, 0x01]],
    [255, [0xff, 0x01]],
    [300, [0xac, 0x02]],
    [16256, [0x80, 0x7f]],
    [624485, [0xe5, 0x8e, 0x26]],
    [65536, [0x80, 0x80, 0x04]],
    [2 ** 32 - 1, [0xff, 0xff, 0xff, 0xff, 0x0f]],
    [2 ** 32, [0x80, 0x80, 0x80, 0x80, 0x10]],
    [2n ** 64n - 1n, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]],
  ];
  for (const [v, want] of cases)
    assert.equal(
      bytes((o) => uleb(o, v)),
      want,
      `uleb ${v}`,
    );
  assert.throws(() => uleb([], -1));
  assert.throws(() => uleb([], 1.5));
});

test('signed LEB128: known encodings', () => {
  const cases: [number | bigint, number[]][] = [
    [0, [0x00]],
    [1, [0x01]],
    [-1, [0x7f]],
    [63, [0x3f]],
    [64, [0xc0, 0x00]],
    [-64, [0x40]],
    [-65, [0xbf, 0x7f]],
    [127, [0xff, 0x00]],
    [-128, [0x80, 0x7f]],
    [-123456, [0xc0, 0xbb, 0x78]],
    [2 ** 31 - 1, [0xff, 0xff, 0xff, 0xff, 0x07]],
    [-(2 ** 31), [0x80, 0x80, 0x80, 0x80, 0x78]],
    [-(2n ** 63n), [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x7f]],
    [2n ** 63n - 1n, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00]],
  ];
  for (const [v, want] of cases)
    assert.equal(
      bytes((o) => sleb(o, v)),
      want,
      `sleb ${v}`,
    );
  // i32 immediates: unsigned 32-bit patterns are the same bits as signed
  assert.equal(
    bytes((o) => sleb32(o, 0xffffffff)),
    [0x7f],
  );
  assert.equal(
    bytes((o) => sleb32(o, 0x80000000)),
    [0x80, 0x80, 0x80, 0x80, 0x78],
  );
  assert.throws(() => sleb32([], 2 ** 32));
});

/** Validates, compiles and instantiates; returns the exports. */
function build(m: ModuleBuilder, memory?: WebAssembly.Memory): Record<string, (...a: number[]) => number> {
  const wasm = m.encode();
  assert.ok(WebAssembly.validate(wasm), 'WebAssembly.validate');
  const inst = new WebAssembly.Instance(new WebAssembly.Module(wasm), memory ? { env: { memory } } : {});
  return inst.exports as unknown as Record<string, (...a: number[]) => number>;
}

test('a module that adds two numbers (i32, f32, f64), with and without operands', () => {
  const m = new ModuleBuilder();
  m.function('addi', ['i32', 'i32'], ['i32'], (f, a, b) => f.i32.add(a, b), { export: true });
  m.function(
    'addf',
    ['f32', 'f32'],
    ['f32'],
    (f, a, b) => {
      f.local.get(a);
      f.local.get(b);
      f.f32.add();
    },
    { export: true },
  );
  m.function('addd', ['f64', 'f64'], ['f64'], (f, a, b) => f.f64.add(a, () => f.f64.add(b, 0.25)), { export: true });
  const e = build(m);
  assert.is(e.addi(2, 40), 42);
  assert.is(e.addi(0x7fffffff, 1), -(2 ** 31)); // i32 wraps
  assert.is(e.addf(0.1, 0.2), Math.fround(Math.fround(0.1) + Math.fround(0.2)));
  assert.is(e.addd(1, 2), 3.25);
});

test('loops: block/loop/br_if by hand, the for helper, if/else, early return', () => {
  const m = new ModuleBuilder();
  // sum of 1..n with an explicit loop
  m.function(
    'sum',
    ['i32'],
    ['i32'],
    (f, n) => {
      const s = f.local.declare('i32');
      f.block((done) => {
        f.loop((top) => {
          f.br_if(done, () => f.i32.eqz(n));
          f.local.set(s, () => f.i32.add(s, n));
          f.local.set(n, () => f.i32.sub(n, 1));
          f.br(top);
        });
      });
      f.local.get(s);
    },
    { export: true },
  );
  // factorial in f64 with f.for, and collatz steps with if/else
  m.function(
    'fact',
    ['i32'],
    ['f64'],
    (f, n) => {
      const i = f.local.declare('i32'),
        p = f.local.declare('f64');
      f.local.set(p, 1);
      f.for(
        i,
        1,
        () => f.i32.add(n, 1),
        1,
        () => {
          f.local.set(p, () => f.f64.mul(p, () => f.f64.convert_i32_s(i)));
        },
      );
      f.local.get(p);
    },
    { export: true },
  );
  m.function(
    'collatz',
    ['i32'],
    ['i32'],
    (f, n) => {
      const steps = f.local.declare('i32');
      f.loop((top) => {
        f.if(
          () => f.i32.eq(n, 1),
          () => f.return(steps),
        );
        f.if(
          () => f.i32.and(n, 1),
          () => f.local.set(n, () => f.i32.add(() => f.i32.mul(n, 3), 1)),
          () => f.local.set(n, () => f.i32.shr_u(n, 1)),
        );
        f.local.set(steps, () => f.i32.add(steps, 1));
        f.br(top);
      });
      f.unreachable();
    },
    { export: true },
  );
  // a block with a result, selected by if/else with a result
  m.function(
    'sign',
    ['f32'],
    ['i32'],
    (f, x) => {
      f.if(
        () => f.f32.lt(x, 0),
        () => f.i32.const(-1),
        () => f.f32.ne(x, 0),
        'i32',
      );
    },
    { export: true },
  );
  const e = build(m);
  assert.is(e.sum(100), 5050);
  assert.is(e.sum(0), 0);
  assert.is(e.fact(10), 3628800);
  assert.is(e.fact(0), 1);
  assert.is(e.collatz(27), 111);
  assert.is(e.sign(-2), -1);
  assert.is(e.sign(3), 1);
  assert.is(e.sign(0), 0);
});

test('calls between functions, i64, conversions', () => {
  const m = new ModuleBuilder();
  const sq = m.function('sq', ['f64'], ['f64'], (f, x) => f.f64.mul(x, x));
  m.function(
    'hyp',
    ['f64', 'f64'],
    ['f64'],
    (f, a, b) =>
      f.f64.sqrt(() =>
        f.f64.add(
          () => f.call(sq, a),
          () => f.call(sq, b),
        ),
      ),
    {
      export: true,
    },
  );
  m.function(
    'mulhi',
    ['i32', 'i32'],
    ['i32'],
    (f, a, b) =>
      f.i32.wrap_i64(() =>
        f.i64.shr_u(
          () =>
            f.i64.mul(
              () => f.i64.extend_i32_u(a),
              () => f.i64.extend_i32_u(b),
            ),
          32,
        ),
      ),
    { export: true },
  );
  m.function('trunc', ['f32'], ['i32'], (f, x) => f.i32.trunc_f32_s(x), { export: true });
  const e = build(m);
  assert.is(e.hyp(3, 4), 5);
  assert.is(e.mulhi(0x10000, 0x30000) >>> 0, 3);
  assert.is(e.trunc(-2.75), -2);
});

/** Memory for the SIMD tests: 1 page, shared, as the kernels' heap is. */
function sharedMemory(pages = 1, maximum = 4): WebAssembly.Memory {
  return new WebAssembly.Memory({ initial: pages, maximum, shared: true });
}

/** A module with one function per test case: (in, out) byte offsets, reads a v128 at in and b at in+16, writes out. */
function simdModule(cases: Record<string, (f: FunctionBuilder, a: Local, b: Local) => void>): ModuleBuilder {
  const m = new ModuleBuilder();
  m.importMemory({ initial: 1, maximum: 4, shared: true });
  for (const [name, body] of Object.entries(cases)) {
    m.function(
      name,
      ['i32', 'i32'],
      [],
      (f, src, dst) => {
        const a = f.local.declare('v128'),
          b = f.local.declare('v128');
        f.local.set(a, () => f.v128.load(src));
        f.local.set(b, () => f.v128.load(src, 16));
        f.v128.store(dst, () => body(f, a, b));
      },
      { export: true },
    );
  }
  return m;
}

test('f32x4 arithmetic, rounding, comparisons and bitselect, lane by lane against Math.fround', () => {
  const unary = ['abs', 'neg', 'sqrt', 'ceil', 'floor', 'nearest', 'trunc'] as const;
  const binary = ['add', 'sub', 'mul', 'div', 'min', 'max'] as const;
  const compare = ['eq', 'ne', 'lt', 'gt', 'le', 'ge'] as const;
  const cases: Record<string, (f: FunctionBuilder, a: Local, b: Local) => void> = {};
  for (const op of unary) cases[op] = (f, a) => f.f32x4[op](a);
  for (const op of binary) cases[op] = (f, a, b) => f.f32x4[op](a, b);
  for (const op of compare) cases[op] = (f, a, b) => f.f32x4[op](a, b);
  // lanes of a where a < b, else b: the min by bitselect
  cases.select = (f, a, b) => f.v128.bitselect(a, b, () => f.f32x4.lt(a, b));
  cases.andxor = (f, a, b) =>
    f.v128.xor(
      () => f.v128.and(a, b),
      () => f.v128.or(a, b),
    );
  const mem = sharedMemory();
  const e = build(simdModule(cases), mem);
  const f32 = new Float32Array(mem.buffer);
  const u32 = new Uint32Array(mem.buffer);
  const A = [2.5, -1.5, 9, -0.3],
    B = [0.5, -1.5, 3.25, 7];
  f32.set(A, 0);
  f32.set(B, 4);
  const a = A.map(Math.fround),
    b = B.map(Math.fround);
  const nearest = (x: number) => {
    const r = Math.round(x);
    return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r; // ties to even
  };
  const want: Record<string, (x: number, y: number) => number> = {
    abs: Math.abs,
    neg: (x) => -x,
    sqrt: (x) => Math.fround(Math.sqrt(x)),
    ceil: Math.ceil,
    floor: Math.floor,
    nearest,
    trunc: Math.trunc,
    add: (x, y) => Math.fround(x + y),
    sub: (x, y) => Math.fround(x - y),
    mul: (x, y) => Math.fround(x * y),
    div: (x, y) => Math.fround(x / y),
    min: Math.min,
    max: Math.max,
    select: (x, y) => (x < y ? x : y),
  };
  const cmp: Record<string, (x: number, y: number) => boolean> = {
    eq: (x, y) => x === y,
    ne: (x, y) => x !== y,
    lt: (x, y) => x < y,
    gt: (x, y) => x > y,
    le: (x, y) => x <= y,
    ge: (x, y) => x >= y,
  };
  for (const name of Object.keys(cases)) {
    e[name](0, 64);
    for (let l = 0; l < 4; l++) {
      if (name in cmp) assert.is(u32[16 + l], cmp[name](a[l], b[l]) ? 0xffffffff : 0, `${name} lane ${l}`);
      else if (name === 'andxor') {
        const ua = u32[l],
          ub = u32[4 + l];
        assert.is(u32[16 + l], ((ua & ub) ^ (ua | ub)) >>> 0, `${name} lane ${l}`);
      } else assert.ok(Object.is(f32[16 + l], Math.fround(want[name](a[l], b[l]))), `${name} lane ${l}: ${f32[16 + l]}`);
    }
  }
});

test('lanes, shuffles, splats and the i32x4 ops of a vectorised exp (2^floor(x) by exponent bits)', () => {
  const mem = sharedMemory();
  const e = build(
    simdModule({
      // replace lane 2 of a with lane 0 of b, then lane 3 with 1 + extract lane 1 of a
      lanes: (f, a, b) =>
        f.f32x4.replace_lane(
          3,
          () => f.f32x4.replace_lane(2, a, () => f.f32x4.extract_lane(0, b)),
          () => f.f32.add(1, () => f.f32x4.extract_lane(1, a)),
        ),
      interleave: (f, a, b) => f.v128.shuffle32([0, 4, 1, 5], a, b),
      high: (f, a, b) => f.v128.shuffle32([2, 3, 6, 7], a, b),
      splat: (f, a) => f.f32x4.mul(a, () => f.f32x4.splat(2)),
      konst: (f, a) => f.f32x4.add(a, () => f.f32x4.const(1, 2, 3, 4)),
      // (floor(a) + 127) << 23, read as floats: 2^floor(a) for a in the normal range
      pow2: (f, a) =>
        f.i32x4.shl(
          () =>
            f.i32x4.add(
              () => f.i32x4.trunc_sat_f32x4_s(() => f.f32x4.floor(a)),
              () => f.i32x4.splat(127),
            ),
          23,
        ),
      roundtrip: (f, a) => f.f32x4.convert_i32x4_s(() => f.i32x4.trunc_sat_f32x4_s(a)),
      shifts: (f, a) =>
        f.i32x4.sub(
          () => f.i32x4.shr_s(a, 1),
          () => f.i32x4.shr_u(a, 1),
        ),
      intops: (f, a, b) =>
        f.i32x4.max_s(
          () => f.i32x4.mul(a, b),
          () => f.i32x4.const(-5),
        ),
    }),
    mem,
  );
  const f32 = new Float32Array(mem.buffer);
  const i32 = new Int32Array(mem.buffer);
  const run = (name: string, a: number[], b: number[], ints = false) => {
    (ints ? i32 : f32).set(a, 0);
    (ints ? i32 : f32).set(b, 4);
    e[name](0, 32);
    return Array.from((ints ? i32 : f32).subarray(8, 12));
  };
  assert.equal(run('lanes', [1, 2, 3, 4], [5, 6, 7, 8]), [1, 2, 5, 3]);
  assert.equal(run('interleave', [1, 2, 3, 4], [5, 6, 7, 8]), [1, 5, 2, 6]);
  assert.equal(run('high', [1, 2, 3, 4], [5, 6, 7, 8]), [3, 4, 7, 8]);
  assert.equal(run('splat', [1, 2, 3, 4], [0, 0, 0, 0]), [2, 4, 6, 8]);
  assert.equal(run('konst', [1, 1, 1, 1], [0, 0, 0, 0]), [2, 3, 4, 5]);
  assert.equal(run('pow2', [0.5, 3.9, -2.5, -126], [0, 0, 0, 0]), [1, 8, 0.125, 2 ** -126]);
  assert.equal(run('roundtrip', [1.75, -1.75, 3e9, -3e9], [0, 0, 0, 0]), [1, -1, 2147483648, -2147483648]);
  assert.equal(run('shifts', [-8, 8, -1, 0], [0, 0, 0, 0], true), [-4 - 0x7ffffffc, 0, -1 - 0x7fffffff, 0]);
  assert.equal(run('intops', [3, -4, 5, -6], [2, 2, -2, -2], true), [6, -5, -5, 12]);
});

test('an imported shared memory: two instances on one memory, splat loads and lane stores, growth seen by both', () => {
  const m = new ModuleBuilder();
  m.importMemory({ initial: 1, maximum: 8, shared: true });
  // y[i] = a * x[i] + y[i] over n floats (n a multiple of 4): the header's example
  m.function(
    'axpy',
    ['i32', 'i32', 'i32', 'f32'],
    [],
    (f, x, y, n, a) => {
      const i = f.local.declare('i32'),
        av = f.local.declare('v128');
      f.local.set(av, () => f.f32x4.splat(a));
      f.for(
        i,
        0,
        () => f.i32.shl(n, 2),
        16,
        () => {
          f.v128.store(
            () => f.i32.add(y, i),
            () =>
              f.f32x4.add(
                () => f.v128.load(() => f.i32.add(y, i)),
                () => f.f32x4.mul(av, () => f.v128.load(() => f.i32.add(x, i))),
              ),
          );
        },
      );
    },
    { export: true },
  );
  // out[0..3] = splat(p[0]) + lane 1 stored at out+16 from a load32_lane
  m.function(
    'lanesmem',
    ['i32', 'i32'],
    [],
    (f, p, out) => {
      f.v128.store(out, () => f.v128.load32_splat(p));
      f.v128.store32_lane(1, out, () => f.v128.load32_lane(1, p, () => f.v128.load32_zero(p, 8), 4), 16);
    },
    { export: true },
  );
  m.function('pages', [], ['i32'], (f) => f.emit(0x3f, 0x00), { export: true });
  // an unaligned address with alignment hint 2^0 (any hint works; this one is honest)
  m.function('unaligned', ['i32'], ['i32'], (f, p) => f.i32.load(p, 1, 0), { export: true });
  const mem = sharedMemory(1, 8);
  assert.ok(mem.buffer instanceof SharedArrayBuffer);
  const e1 = build(m, mem),
    e2 = build(m, mem);
  const f32 = new Float32Array(mem.buffer);
  const n = 64;
  for (let i = 0; i < n; i++) {
    f32[i] = i;
    f32[n + i] = 1;
  }
  e1.axpy(0, 4 * n, n, 0.5);
  e2.axpy(0, 4 * n, n, 0.5); // the second instance sees the first one's results
  for (let i = 0; i < n; i++) assert.is(f32[n + i], 1 + i, `y[${i}]`);
  f32.set([7, 8, 9], 512);
  e1.lanesmem(512 * 4, 600 * 4);
  assert.equal(Array.from(f32.subarray(600, 604)), [7, 7, 7, 7]);
  assert.is(f32[604], 8); // lane 1 loaded from p + 4, stored from lane 1
  new Uint8Array(mem.buffer).set([0x11, 0x22, 0x33, 0x44, 0x55], 4000);
  assert.is(e1.unaligned(4000), 0x55443322);
  mem.grow(2);
  assert.is(e2.pages(), 3);
  assert.is(new Float32Array(mem.buffer).length, (3 * 65536) / 4);
  // a memory of other limits than the module imports does not link
  assert.throws(() => build(m, new WebAssembly.Memory({ initial: 1, maximum: 16, shared: true })));
  assert.throws(() => build(m, new WebAssembly.Memory({ initial: 1, maximum: 8 })));
});

test('mistakes are reported: open labels, shared without maximum, invalid code names its function', () => {
  const m = new ModuleBuilder();
  assert.throws(() => m.importMemory({ initial: 1, shared: true }), /maximum/);
  assert.throws(() => m.importMemory({ initial: 1, maximum: 65537, shared: true }), /pages/);
  assert.throws(() => {
    m.function('bad', [], [], (f) => {
      let outer = { depth: 0 };
      f.block((l) => {
        outer = l;
      });
      f.br(outer);
    });
  }, /not open/);
  const m2 = new ModuleBuilder();
  m2.function('mistyped', ['i32'], ['f32'], (f, x) => f.i32.add(x, 1), { export: true });
  assert.not.ok(WebAssembly.validate(m2.encode()));
  assert.throws(() => m2.compile(), /mistyped/);
  assert.throws(() => new ModuleBuilder().function('v', [], [], (f) => f.f32x4.add(1)), /v128 operand/);
  assert.throws(() => new ModuleBuilder().function('a', [], [], (f) => f.f32.load(0, 0, 3)), /alignment/);
});

test.run();
