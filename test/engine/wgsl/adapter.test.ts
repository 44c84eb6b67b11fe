// Which WebGPU adapters are software (engine/wgsl/adapter.ts), on adapter-info records as Dawn and
// browsers report them, and what `initBackend` picks on this machine's adapter: 'auto' takes
// WebGPU only on a hardware adapter; 'webgpu' takes a software one too, with a one-line warning.
// With REQUIRE_WEBGPU=1 a missing adapter fails the second suite instead of narrowing it.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { backendSelection, cpuBackend, initBackend, setBackend } from '../../../engine/runtime.ts';
import { type AdapterFacts, classifyAdapter } from '../../../engine/wgsl/adapter.ts';
import { probeAdapter } from '../../../engine/wgsl/device.ts';

const classify = suite('classifyAdapter: software or hardware');

const RECORDS: [string, AdapterFacts, boolean][] = [
  [
    'Mesa lavapipe, as Dawn reports it here',
    {
      vendor: 'mesa',
      architecture: 'software',
      device: 'llvmpipe-llvm-15-0-6-256-bits-',
      description: 'llvmpipe: Mesa 25.0.7-2~bpo12+1 (LLVM 15.0.6) 0.0.1',
      isFallbackAdapter: true,
    },
    true,
  ],
  [
    'lavapipe without the fallback flag (older Dawn)',
    { vendor: 'mesa', architecture: '', description: 'llvmpipe (LLVM 15.0.6, 256 bits)' },
    true,
  ],
  [
    'SwiftShader in Dawn',
    { vendor: 'google', architecture: 'swiftshader', description: 'SwiftShader Device (Subzero)', isFallbackAdapter: true },
    true,
  ],
  ['SwiftShader in a browser without the flag', { vendor: 'google', architecture: 'swiftshader', device: '', description: '' }, true],
  ['Microsoft Basic Render Driver (WARP)', { vendor: 'microsoft', architecture: '', description: 'Microsoft Basic Render Driver' }, true],
  ['an adapter typed cpu', { vendor: 'acme', architecture: 'x', adapterType: 'cpu' }, true],
  [
    'NVIDIA H100, as Dawn reports it',
    { vendor: 'nvidia', architecture: 'hopper', device: '', description: 'NVIDIA H100 80GB HBM3', isFallbackAdapter: false },
    false,
  ],
  ['NVIDIA H200', { vendor: 'nvidia', architecture: 'hopper', description: 'NVIDIA H200' }, false],
  [
    'AMD on RADV (a Mesa driver, but hardware)',
    { vendor: 'amd', architecture: 'rdna-3', description: 'AMD Radeon RX 7900 XTX (RADV NAVI31)' },
    false,
  ],
  ['Intel on ANV (Mesa)', { vendor: 'intel', architecture: 'gen-12lp', description: 'Mesa Intel(R) UHD Graphics 770 (ADL-S GT1)' }, false],
  ['Apple', { vendor: 'apple', architecture: 'metal-3', description: 'Apple M2 Pro' }, false],
  [
    'a discrete GPU by type',
    { vendor: 'nvidia', architecture: 'ampere', adapterType: 'discrete-gpu', description: 'NVIDIA A100-SXM4-40GB' },
    false,
  ],
  ['a browser that hides every name', { vendor: '', architecture: '', device: '', description: '' }, false],
];

for (const [what, facts, software] of RECORDS) {
  classify(`${what}: ${software ? 'software' : 'hardware'}`, () => {
    const a = classifyAdapter(facts);
    assert.is(a.software, software, a.why);
    assert.ok(a.why.length > 0);
    assert.is(a.vendor, facts.vendor ?? '');
    assert.is(a.description, facts.description ?? '');
  });
}

classify.run();

const choose = suite('initBackend on this machine: auto only on hardware, webgpu also on software');

const here = await probeAdapter().catch(() => null);
if (!here && process.env.REQUIRE_WEBGPU === '1') throw new Error('REQUIRE_WEBGPU=1 but requestAdapter() found no adapter');

async function pick(name: 'auto' | 'webgpu'): Promise<{ name: string; lines: string[] }> {
  const lines: string[] = [];
  try {
    const b = await initBackend(name, (l) => lines.push(l));
    return { name: b.name, lines };
  } finally {
    setBackend(cpuBackend()); // the other suites of this process expect the CPU as the default
  }
}

choose('auto: the CPU with one line saying why, unless the adapter is hardware', async () => {
  const r = await pick('auto');
  const sel = backendSelection()!;
  assert.is(sel.requested, 'auto');
  if (!here) {
    assert.is(r.name, 'cpu');
    assert.equal(r.lines.length, 1);
    assert.match(r.lines[0], /^backend: no WebGPU.*; using the CPU backend/);
    assert.match(sel.reason, /no WebGPU/);
  } else if (here.software) {
    assert.is(r.name, 'cpu');
    assert.equal(r.lines.length, 1, r.lines.join('\n'));
    assert.match(r.lines[0], /^backend: only a software WebGPU adapter \(.+\), slower than the CPU; using the CPU backend/);
    assert.match(sel.reason, /only a software WebGPU adapter/);
    assert.is(sel.adapter?.software, true);
    assert.is(sel.adapter?.vendor, here.vendor);
  } else {
    assert.is(r.name, 'webgpu');
    assert.equal(r.lines, []);
    assert.is(sel.adapter?.software, false);
  }
});

choose('webgpu: the adapter, with a one-line warning when it is software', async () => {
  if (!here) {
    let failed = false;
    await pick('webgpu').catch(() => {
      failed = true;
    });
    assert.ok(failed, "'webgpu' without an adapter is an error");
    return;
  }
  const r = await pick('webgpu');
  assert.is(r.name, 'webgpu');
  const sel = backendSelection()!;
  assert.is(sel.requested, 'webgpu');
  assert.is(sel.adapter?.software, here.software);
  if (here.software) {
    assert.equal(r.lines.length, 1, r.lines.join('\n'));
    assert.match(r.lines[0], /^webgpu: using a software adapter \(.+\): CPU speed, for tests$/);
  } else assert.equal(r.lines, []);
});

choose.run();
