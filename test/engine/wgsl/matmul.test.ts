// The WebGPU matmul's kernels (engine/wgsl/kernels/matmul.ts): the shape rule that picks one, the
// plans it makes (vec4 declarations only where the layout allows, workgroup memory within the
// spec's 16 KiB), and, on this machine's adapter, every design forced onto the matmul cases of the
// parity table (test/engine/kernel-cases.ts) that are small enough to run many times: each tile
// (128 x 128, 128 x 64, 64 x 128, 64 x 64), split-K, and the skinny kernel where it applies, so a
// design the rule picks only at sizes the table cannot afford is still checked at every edge.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import * as mi from '../../../engine/index.ts';
import type { KernelParams } from '../../../engine/kernels.ts';
import type { DeviceFacts } from '../../../engine/wgsl/kernel.ts';
import { chooseMatmul, type MatmulChoice, matmul, matmulKernel, splitK } from '../../../engine/wgsl/kernels/matmul.ts';
import { WGSL_KERNELS } from '../../../engine/wgsl/kernels/index.ts';
import { runKernel, worstRelativeError } from '../../helpers/kernel-run.ts';
import { getWebGpu } from '../../helpers/webgpu.ts';
import { Gen, KERNEL_CASES, TOLERANCE } from '../kernel-cases.ts';

const SPEC: DeviceFacts = { maxWorkgroupSize: 256, maxWorkgroupStorage: 16384, maxWorkgroupsPerDimension: 65535 };
const rule = suite('webgpu matmul: which kernel for which shape');

const pick = (batch: number, M: number, N: number, K: number) => chooseMatmul({ batch, M, N, K });

rule('M or N up to 8 (decoding, a probe) takes the skinny kernel', () => {
  for (const [M, N] of [
    [1, 50280],
    [8, 3072],
    [4096, 4],
    [1, 1],
  ])
    assert.equal(pick(1, M, N, 768), { kind: 'matvec' }, `${M} x ${N}`);
  assert.is(pick(1, 9, 3072, 768).kind, 'tiled');
});

rule('big problems take 128 x 128 tiles; a 1024^2 output 64 x 64 (enough workgroups); 129 rows 64-row tiles', () => {
  assert.equal(pick(1, 4096, 4096, 4096), { kind: 'tiled', tm: 128, tn: 128, split: 1, kChunk: 4096, workgroups: 1024 });
  assert.equal(pick(1, 2048, 3072, 768), { kind: 'tiled', tm: 128, tn: 128, split: 1, kChunk: 768, workgroups: 384 });
  const c1024 = pick(1, 1024, 1024, 1024);
  assert.ok(c1024.kind === 'tiled' && c1024.tm === 64 && c1024.tn === 64 && c1024.split === 1, JSON.stringify(c1024));
  const c = pick(1, 3072, 768, 2048);
  assert.ok(c.kind === 'tiled' && c.tm === 128 && c.tn === 64, JSON.stringify(c));
  const odd = pick(16, 129, 4100, 64) as Extract<MatmulChoice, { kind: 'tiled' }>;
  assert.is(odd.tm, 64, JSON.stringify(odd));
});

rule('few tiles and a long K split K (weight gradients), with the scratch capped', () => {
  const c = pick(1, 80, 1536, 16384) as Extract<MatmulChoice, { kind: 'tiled' }>;
  assert.ok(c.split > 1 && c.kChunk % 8 === 0 && c.split * c.kChunk >= 16384 && (c.split - 1) * c.kChunk < 16384, JSON.stringify(c));
  assert.is((pick(1, 64, 64, 512) as { split: number }).split, 1);
  // 2048 x 2048 outputs at batch 4: 64 MiB per slice, no room for a second
  assert.is((pick(4, 1024, 1024, 1 << 20) as { split: number }).split, 1);
  assert.equal(splitK(100, 3), { split: 3, kChunk: 40 });
  assert.equal(splitK(0, 1), { split: 1, kChunk: 8 });
});

/** Workgroup memory a WGSL module declares, in bytes. */
function workgroupBytes(code: string): number {
  let bytes = 0;
  for (const m of code.matchAll(/var<workgroup>\s+\w+\s*:\s*array<(vec4<f32>|f32),\s*(\d+)>/g))
    bytes += (m[1] === 'f32' ? 4 : 16) * Number(m[2]);
  return bytes;
}

const FORCED: [string, MatmulChoice | ((K: number) => MatmulChoice)][] = [
  ['128x128', (K) => ({ kind: 'tiled', tm: 128, tn: 128, ...splitK(K, 1), workgroups: 0 })],
  ['128x64', (K) => ({ kind: 'tiled', tm: 128, tn: 64, ...splitK(K, 1), workgroups: 0 })],
  ['64x128', (K) => ({ kind: 'tiled', tm: 64, tn: 128, ...splitK(K, 1), workgroups: 0 })],
  ['64x64', (K) => ({ kind: 'tiled', tm: 64, tn: 64, ...splitK(K, 1), workgroups: 0 })],
  ['128x128 split 3', (K) => ({ kind: 'tiled', tm: 128, tn: 128, ...splitK(K, 3), workgroups: 0 })],
  ['64x64 split 2', (K) => ({ kind: 'tiled', tm: 64, tn: 64, ...splitK(K, 2), workgroups: 0 })],
  ['skinny', { kind: 'matvec' }],
];
const forced = (f: (typeof FORCED)[number][1], p: KernelParams['matmul']): MatmulChoice | null => {
  const c = typeof f === 'function' ? f(p.K) : f;
  return c.kind === 'matvec' && Math.min(p.M, p.N) > 8 ? null : c;
};

/** The table's matmul cases run under every design here (the very large ones only by the table itself). */
const SMALL = KERNEL_CASES.matmul.filter((c) =>
  /^matmul b[12] (7x33x1|33x7x5|65x130x17|7x5x1025|129x130x131|132x136x260|33x40x2500|4096x4x33|3x1030x64) /.test(c.name),
);

rule(
  'plans: vec4 buffers exactly where the contiguous axis and batch stride are multiples of 4; at most 16 KiB of workgroup memory',
  () => {
    const info = (n: number) => ({ size: n, dtype: 'float32' as const });
    for (const c of SMALL) {
      const { params: p } = c.build(new Gen(c.name), null as never) as { params: KernelParams['matmul'] };
      for (const [name, f] of FORCED) {
        const choice = forced(f, p);
        if (!choice) continue;
        const plan = matmulKernel(() => choice)(
          [info(p.batch * p.M * p.K), info(p.batch * p.K * p.N)],
          [info(p.batch * p.M * p.N)],
          p,
          SPEC,
        );
        for (const pass of plan.passes) {
          assert.ok(workgroupBytes(pass.code) <= 16384, `${c.name} ${name} ${pass.label}: ${workgroupBytes(pass.code)} bytes`);
          if (choice.kind !== 'tiled' || pass.label.endsWith('sum')) continue;
          const vecA = (p.transA ? p.M : p.K) % 4 === 0 && p.aBatchStride % 4 === 0;
          const vecB = (p.transB ? p.K : p.N) % 4 === 0 && p.bBatchStride % 4 === 0;
          assert.is(pass.code.includes('var<storage, read> A: array<vec4<f32>>'), vecA, `${c.name} ${name}: A`);
          assert.is(pass.code.includes('var<storage, read> B: array<vec4<f32>>'), vecB, `${c.name} ${name}: B`);
          assert.is(pass.code.includes('O: array<vec4<f32>>'), p.N % 4 === 0, `${c.name} ${name}: O`);
        }
      }
    }
    assert.ok(SMALL.length >= 40, `${SMALL.length} cases`);
  },
);

rule.run();

const gpu = await getWebGpu();
const cpu = mi.cpuBackend();
const designs = suite('webgpu matmul: every design on the table cases');

designs("every design matches the CPU on the table's small matmul cases", async () => {
  if (!gpu) return;
  const saved = WGSL_KERNELS.matmul;
  const bad: string[] = [];
  const ran = new Map<string, number>();
  try {
    for (const c of SMALL) {
      const built = c.build(new Gen(`kernel-cases/matmul/${c.name}`), null as never) as Awaited<ReturnType<typeof c.build>>;
      const [want] = await runKernel(cpu, 'matmul', built.inputs, built.outs, built.params);
      const check = built.check as { kind: 'rel'; scale: number };
      for (const [name, f] of FORCED) {
        const choice = forced(f, built.params);
        if (!choice) continue;
        WGSL_KERNELS.matmul = matmulKernel(() => choice);
        const [got] = await runKernel(gpu, 'matmul', built.inputs, built.outs, built.params);
        WGSL_KERNELS.matmul = saved;
        const { worst, at } = worstRelativeError(got, Float32Array.from(want), check.scale);
        if (!(worst <= TOLERANCE)) bad.push(`${name}, ${c.name}: error ${worst} at ${at} (gpu ${got[at]}, cpu ${want[at]})`);
        ran.set(name, (ran.get(name) ?? 0) + 1);
      }
    }
  } finally {
    WGSL_KERNELS.matmul = saved;
  }
  assert.equal(
    [...ran.keys()],
    FORCED.map(([n]) => n),
  );
  assert.equal(bad, [], `${bad.length} failed:\n  ${bad.join('\n  ')}`);
});

designs('the default kernel is the one registered', () => {
  assert.is(WGSL_KERNELS.matmul, matmul);
});

designs.run();
