// The tree's structure rules (scripts/layers.ts): layers only look down, one file name per op in
// every layer, no import cycle. Each rule is checked on the real tree, and on a copy of it with
// one planted break, which it must report (and only that).
import { appendFileSync, cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { importCycles, layerViolations, opFileMismatches } from '../../scripts/layers.ts';
import { withTempDir } from '../helpers/temp-dir.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const test = suite('tree structure (scripts/layers.ts)');

/** A test body on a copy of the tree's sources (no node_modules, no runs) to plant a break into, removed afterwards. */
const onCopyOfTree = (body: (dir: string) => void) =>
  withTempDir('mi-layers-', (dir) => {
    for (const part of ['engine', 'mamba', 'interp', 'steps', 'scripts', 'bench', 'test', 'browser.ts']) {
      cpSync(join(ROOT, part), join(dir, part), { recursive: true });
    }
    body(dir);
  });

test('the tree: no upward import, no driver importing a driver', () => {
  assert.equal(layerViolations(ROOT), []);
});

test('the tree: every op has one file name in ops, the CPU kernels, the WGSL kernels and test/engine', () => {
  assert.equal(opFileMismatches(ROOT), []);
});

test('the tree: no import cycle (outside the ops, whose gradient rules call each other)', () => {
  assert.equal(importCycles(ROOT), []);
});

test(
  'a planted upward import (engine -> mamba) is reported, naming file, line and layers',
  onCopyOfTree((dir) => {
    appendFileSync(join(dir, 'engine/shape.ts'), "\nimport { MambaLM } from '../mamba/model.ts';\nexport const planted = MambaLM;\n");
    const bad = layerViolations(dir);
    assert.is(bad.length, 1, bad.join('\n'));
    assert.match(bad[0], /^engine\/shape\.ts:\d+ imports mamba\/model\.ts: engine \(layer 0\) may not import mamba \(layer 1\)$/);
  }),
);

test(
  'a planted driver-to-driver import, sideways import and cycle are reported',
  onCopyOfTree((dir) => {
    appendFileSync(join(dir, 'steps/step05-circuits.ts'), "\nimport './step04-probes.ts';\n");
    appendFileSync(join(dir, 'bench/index.ts'), "\nimport '../test/helpers/gradcheck.ts';\n");
    const bad = layerViolations(dir);
    assert.is(bad.length, 2, bad.join('\n'));
    assert.ok(bad.some((b) => b.startsWith('steps/step05-circuits.ts:') && b.includes('never another driver')));
    assert.ok(bad.some((b) => b.startsWith('bench/index.ts:') && b.includes('bench (layer 5) may not import test (layer 5)')));
    // a runtime cycle between two interp files; a type-only import back is not one
    writeFileSync(join(dir, 'interp/planted-a.ts'), "import { b } from './planted-b.ts';\nexport const a = () => b;\n");
    writeFileSync(join(dir, 'interp/planted-b.ts'), "import { a } from './planted-a.ts';\nexport const b = () => a;\n");
    writeFileSync(join(dir, 'interp/planted-c.ts'), "import type { a } from './planted-a.ts';\nexport type C = typeof a;\n");
    appendFileSync(join(dir, 'interp/planted-a.ts'), "import type { C } from './planted-c.ts';\nexport type A = C;\n");
    assert.equal(importCycles(dir), [['interp/planted-a.ts', 'interp/planted-b.ts']]);
  }),
);

test(
  'a kernel file without its twin, or an op without its test, is reported',
  onCopyOfTree((dir) => {
    writeFileSync(join(dir, 'engine/cpu/kernels/planted.ts'), 'export function planted(): void {}\n');
    rmSync(join(dir, 'test/engine/matmul.test.ts'));
    assert.equal(opFileMismatches(dir).sort(), [
      'engine/cpu/kernels/planted.ts has no engine/ops/planted.ts',
      'engine/cpu/kernels/planted.ts has no engine/wgsl/kernels/planted.ts',
      'engine/ops/matmul.ts has no test/engine/matmul.test.ts',
    ]);
  }),
);

test(
  'a WebAssembly kernel file without its scalar twin, a helper folder without its op file, a wasm: from another op file are reported',
  onCopyOfTree((dir) => {
    writeFileSync(join(dir, 'engine/wasm/kernels/planted.ts'), 'export const PLANTED = {};\n');
    cpSync(join(dir, 'engine/wasm/kernels/matmul'), join(dir, 'engine/wasm/kernels/stray'), { recursive: true });
    // the softmax kernel taking its WebAssembly version from the matmul file
    const index = join(dir, 'engine/cpu/kernels/index.ts');
    writeFileSync(
      index,
      readFileSync(index, 'utf8').replace('softmax: { run: softmax, wasm: wasmSoftmax }', 'softmax: { run: softmax, wasm: WASM_MATMUL }'),
    );
    assert.equal(opFileMismatches(dir).sort(), [
      'engine/wasm/kernels/planted.ts has no engine/cpu/kernels/planted.ts',
      'engine/wasm/kernels/stray/ (helpers) has no engine/wasm/kernels/stray.ts',
      'kernel softmax is in engine/cpu/kernels/softmax.ts but its wasm: in engine/wasm/kernels/matmul.ts',
    ]);
  }),
);

test.run();
