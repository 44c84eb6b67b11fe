// computePass (engine/wgsl/layout.ts): from one list of uniforms and storage buffers, the WGSL
// declarations, the uniform bytes and the bindings agree. The expected bytes are written out by hand
// from WGSL's uniform layout rules (4-byte scalars, 16-byte aligned arrays of vec4), not computed by
// the code under test. No GPU needed.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { computePass, input, output, scratch, vecAt } from '../../../engine/wgsl/layout.ts';

const test = suite('wgsl computePass: one declaration list');

test('scalars, a padded array, and storage buffers numbered from binding 1', () => {
  const pass = computePass({
    label: 'demo',
    uniforms: { n: ['u32', 7], off: ['i32', -3], eps: ['f32', 0.5], shape: ['u32', [2, 3, 5, 11, 13]] },
    buffers: [
      ['X', 'f32', 'read', input(1)],
      ['O', 'i32', 'read_write', output(0)],
      ['tmp', 'f32', 'read_write', scratch(0)],
    ],
    code: 'fn main() {}',
    workgroups: [4, 1, 1],
    foldable: true,
  });
  assert.is(
    pass.code,
    'struct Uniforms {\n  n: u32,\n  off: i32,\n  eps: f32,\n  _pad3: u32,\n  shape: array<vec4<u32>, 2>,\n};\n' +
      '@group(0) @binding(0) var<uniform> u: Uniforms;\n' +
      '@group(0) @binding(1) var<storage, read> X: array<f32>;\n' +
      '@group(0) @binding(2) var<storage, read_write> O: array<i32>;\n' +
      '@group(0) @binding(3) var<storage, read_write> tmp: array<f32>;\n' +
      'fn main() {}',
  );
  assert.equal(pass.bindings, [
    { kind: 'input', index: 1 },
    { kind: 'output', index: 0 },
    { kind: 'scratch', index: 0 },
  ]);
  assert.is(pass.foldable, true);
  // 4 scalar words (one of padding), then 8 words of the array (5 values, 3 zeros): 48 bytes
  const bytes = new DataView(pass.uniforms!);
  assert.is(pass.uniforms!.byteLength, 48);
  assert.is(bytes.getUint32(0, true), 7);
  assert.is(bytes.getInt32(4, true), -3);
  assert.is(bytes.getFloat32(8, true), 0.5);
  assert.equal(
    Array.from({ length: 8 }, (_, i) => bytes.getUint32(16 + 4 * i, true)),
    [2, 3, 5, 11, 13, 0, 0, 0],
  );
  assert.is(vecAt('shape', 4), 'u.shape[1].x');
  assert.is(vecAt('shape', 3), 'u.shape[0].w');
});

test('no uniforms: no block and no binding 0 declaration; a lone scalar still fills 16 bytes', () => {
  const bare = computePass({ label: 'bare', buffers: [['O', 'f32', 'read_write', output(0)]], code: '', workgroups: [1, 1, 1] });
  assert.is(bare.uniforms, undefined);
  assert.not.match(bare.code, /binding\(0\)/);
  const one = computePass({ label: 'one', uniforms: { n: ['u32', 1] }, buffers: [], code: '', workgroups: [1, 1, 1] });
  assert.is(one.uniforms!.byteLength, 16);
});

test('the pass refuses more than 8 storage buffers, a name used twice, and a u32 out of range', () => {
  const buffers = Array.from({ length: 9 }, (_, i) => [`b${i}`, 'f32', 'read', input(i)] as const);
  assert.throws(
    () => computePass({ label: 'wide', buffers, code: '', workgroups: [1, 1, 1] }),
    /wide: binds 9 storage buffers, more than 8/,
  );
  assert.throws(
    () =>
      computePass({
        label: 'twice',
        buffers: [
          ['x', 'f32', 'read', input(0)],
          ['x', 'f32', 'read_write', output(0)],
        ],
        code: '',
        workgroups: [1, 1, 1],
      }),
    /twice: storage buffer name 'x' is taken/,
  );
  assert.throws(
    () => computePass({ label: 'neg', uniforms: { n: ['u32', -1] }, buffers: [], code: '', workgroups: [1, 1, 1] }),
    /neg: uniform n: -1 is not a u32/,
  );
  assert.throws(
    () => computePass({ label: 'u', buffers: [['u', 'f32', 'read', input(0)]], code: '', workgroups: [1, 1, 1] }),
    /'u' is taken/,
  );
});

test.run();
