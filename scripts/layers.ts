// The structure rules of the tree, checked by test/scripts/layers.test.ts (and runnable as
// `npx tsx scripts/layers.ts` to list what breaks them):
// - Layers only look down: engine <- mamba <- interp <- steps <- scripts, with the browser entry
//   (browser.ts) beside steps, and bench/ and test/ on top. A file imports only from its own layer
//   or a lower one; a step driver (steps/stepNN-*.ts) never imports another driver (only the
//   registry, steps/index.ts, imports drivers).
// - One file name per op in every layer: each kernel lives in the file of the same name under
//   engine/cpu/kernels/ and engine/wgsl/kernels/, beside engine/ops/<name>.ts and
//   test/engine/<name>.test.ts. The WebAssembly kernels (engine/wasm/kernels/<name>.ts, helpers
//   in a folder engine/wasm/kernels/<name>/) are a subset: each has its scalar twin in
//   engine/cpu/kernels/<name>.ts, and the CPU registry takes a kernel's `wasm:` from the file of
//   the same name as its scalar kernel.
// - No import cycle among runtime (non-type) imports, except among engine/ops/ files: an op's
//   gradient rule is written with other ops (an elementwise gradient sums over broadcast axes, a
//   reduction's gradient broadcasts back), so those modules call each other, at call time only.
// Imports are read from the source text (static `import ... from`, `export ... from`, and
// `import('...')` with a literal path); only relative paths into the tree are checked.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { pathToFileURL } from 'node:url';

/** Layer of each top-level part of the tree; a file may import from a layer of equal or lower rank. */
const LAYERS: Record<string, number> = { engine: 0, mamba: 1, interp: 2, steps: 3, 'browser.ts': 3, scripts: 4, bench: 5, test: 5 };
const SOURCE_DIRS = ['engine', 'mamba', 'interp', 'steps', 'scripts', 'bench', 'test'];
const DRIVER = /^steps\/step\d\d-[^/]+\.ts$/;

export interface Import {
  /** importing file, relative to the root, with / separators */
  from: string;
  /** imported file, relative to the root */
  to: string;
  line: number;
  /** `import type` / `export type`: no runtime edge */
  typeOnly: boolean;
}

function sourceFiles(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      if (name === 'node_modules' || name.startsWith('.')) continue;
      const p = join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (name.endsWith('.ts')) out.push(p);
    }
  };
  for (const d of SOURCE_DIRS) if (existsSync(join(root, d))) walk(join(root, d));
  if (existsSync(join(root, 'browser.ts'))) out.push(join(root, 'browser.ts'));
  return out;
}

const rel = (root: string, p: string) => relative(root, p).split(sep).join('/');

const IMPORT =
  /(?:^|[\s;])(import|export)\s+(type\s+)?(?:[^'";]*?\sfrom\s+)?['"](\.{1,2}\/[^'"]+)['"]|import\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g;

/** Every relative import of the tree's TypeScript files. */
export function imports(root: string): Import[] {
  const out: Import[] = [];
  for (const file of sourceFiles(root)) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(IMPORT)) {
      const spec = m[3] ?? m[4];
      const target = resolve(dirname(file), spec);
      const line = text.slice(0, m.index).split('\n').length;
      out.push({ from: rel(root, file), to: rel(root, target), line, typeOnly: !!m[2] });
    }
  }
  return out;
}

function layerOf(path: string): string {
  const top = path.split('/')[0];
  return top in LAYERS ? top : '';
}

/** Imports that look up the layers, a driver importing a driver, or a path outside the tree. */
export function layerViolations(root: string): string[] {
  const bad: string[] = [];
  for (const imp of imports(root)) {
    const from = layerOf(imp.from);
    const to = layerOf(imp.to);
    const where = `${imp.from}:${imp.line} imports ${imp.to}`;
    if (!to) {
      if (!imp.to.startsWith('node_modules/') && !imp.to.startsWith('../')) bad.push(`${where}, which is outside the layers`);
      continue;
    }
    const up = LAYERS[to] > LAYERS[from] || (LAYERS[to] === LAYERS[from] && to !== from);
    if (up) bad.push(`${where}: ${from} (layer ${LAYERS[from]}) may not import ${to} (layer ${LAYERS[to]})`);
    else if (DRIVER.test(imp.to) && imp.from !== 'steps/index.ts' && imp.from.startsWith('steps/')) {
      bad.push(`${where}: a step reaches shared code through a module made for it, never another driver`);
    }
  }
  return bad;
}

/**
 * Groups of files that import each other in a circle (strongly connected components of the runtime
 * import graph, Tarjan's algorithm), leaving out groups made only of engine/ops/ files.
 */
export function importCycles(root: string): string[][] {
  const edges = new Map<string, string[]>();
  for (const imp of imports(root)) {
    if (imp.typeOnly) continue;
    if (!edges.has(imp.from)) edges.set(imp.from, []);
    edges.get(imp.from)!.push(imp.to);
  }
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const groups: string[][] = [];
  const visit = (f: string) => {
    index.set(f, index.size);
    low.set(f, index.get(f)!);
    stack.push(f);
    onStack.add(f);
    for (const g of edges.get(f) ?? []) {
      if (!index.has(g)) {
        visit(g);
        low.set(f, Math.min(low.get(f)!, low.get(g)!));
      } else if (onStack.has(g)) low.set(f, Math.min(low.get(f)!, index.get(g)!));
    }
    if (low.get(f) !== index.get(f)) return;
    const group: string[] = [];
    let g: string;
    do {
      g = stack.pop()!;
      onStack.delete(g);
      group.push(g);
    } while (g !== f);
    if (group.length > 1 && !group.every((x) => x.startsWith('engine/ops/'))) groups.push(group.sort());
  };
  for (const f of [...edges.keys()].sort()) if (!index.has(f)) visit(f);
  return groups;
}

/** kernel name -> the file (without .ts) of a registry's `import { ... } from './X.ts'` lines. */
function registryFiles(indexPath: string): Map<string, string> {
  const map = new Map<string, string>();
  const text = readFileSync(indexPath, 'utf8');
  for (const m of text.matchAll(/import\s*\{([^}]*)\}\s*from\s*'\.\/([\w-]+)\.ts'/g)) {
    for (const name of m[1].split(',').map((s) => s.trim().replace(/^type\s+/, ''))) if (name) map.set(name, m[2]);
  }
  return map;
}

/** kernel name -> the file (without .ts) under engine/wasm/kernels/ of its `wasm:` in the CPU registry. */
function wasmRegistry(indexPath: string): Map<string, string> {
  const text = readFileSync(indexPath, 'utf8');
  const fileOf = new Map<string, string>();
  for (const m of text.matchAll(/import\s*\{([^}]*)\}\s*from\s*'\.\.\/\.\.\/wasm\/kernels\/([\w-]+)\.ts'/g)) {
    // `kernel as local`: the registry refers to the local name
    for (const name of m[1].split(',').map(
      (s) =>
        s
          .trim()
          .replace(/^type\s+/, '')
          .split(/\s+as\s+/)
          .pop()!,
    ))
      if (name) fileOf.set(name, m[2]);
  }
  const map = new Map<string, string>();
  for (const m of text.matchAll(/^\s*(\w+):\s*\{[^}\n]*\bwasm:\s*(\w+)/gm))
    map.set(m[1], fileOf.get(m[2]) ?? `(${m[2]}: not imported from engine/wasm/kernels/)`);
  return map;
}

function tsNames(dir: string, exclude: string[]): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.ts') && !exclude.includes(f))
    .map((f) => f.slice(0, -3))
    .sort();
}

/**
 * Breaks of "one file name per op in every layer": a kernel file without its twin in the other
 * backend, an op file without a kernel file or a test, a kernel registered from differently named
 * files by the two backends.
 */
export function opFileMismatches(root: string): string[] {
  const bad: string[] = [];
  const cpu = tsNames(join(root, 'engine/cpu/kernels'), ['index.ts']);
  const wgsl = tsNames(join(root, 'engine/wgsl/kernels'), ['index.ts']);
  // ops composed from other ops (no kernel of their own) and the ops' plumbing
  const ops = tsNames(join(root, 'engine/ops'), ['index.ts', 'run.ts', 'creation.ts']);
  for (const f of cpu) if (!wgsl.includes(f)) bad.push(`engine/cpu/kernels/${f}.ts has no engine/wgsl/kernels/${f}.ts`);
  for (const f of wgsl) if (!cpu.includes(f)) bad.push(`engine/wgsl/kernels/${f}.ts has no engine/cpu/kernels/${f}.ts`);
  for (const f of ops) if (!cpu.includes(f)) bad.push(`engine/ops/${f}.ts has no engine/cpu/kernels/${f}.ts`);
  for (const f of cpu) if (!ops.includes(f)) bad.push(`engine/cpu/kernels/${f}.ts has no engine/ops/${f}.ts`);
  for (const f of ops)
    if (!existsSync(join(root, `test/engine/${f}.test.ts`))) bad.push(`engine/ops/${f}.ts has no test/engine/${f}.test.ts`);
  const wasmDir = join(root, 'engine/wasm/kernels');
  const wasm = tsNames(wasmDir, []);
  for (const f of wasm) if (!cpu.includes(f)) bad.push(`engine/wasm/kernels/${f}.ts has no engine/cpu/kernels/${f}.ts`);
  if (existsSync(wasmDir))
    for (const d of readdirSync(wasmDir).sort())
      if (statSync(join(wasmDir, d)).isDirectory() && !wasm.includes(d))
        bad.push(`engine/wasm/kernels/${d}/ (helpers) has no engine/wasm/kernels/${d}.ts`);
  const cpuReg = registryFiles(join(root, 'engine/cpu/kernels/index.ts'));
  for (const [kernel, file] of wasmRegistry(join(root, 'engine/cpu/kernels/index.ts'))) {
    if (cpuReg.has(kernel) && cpuReg.get(kernel) !== file)
      bad.push(`kernel ${kernel} is in engine/cpu/kernels/${cpuReg.get(kernel)}.ts but its wasm: in engine/wasm/kernels/${file}.ts`);
  }
  const wgslReg = registryFiles(join(root, 'engine/wgsl/kernels/index.ts'));
  for (const [kernel, file] of wgslReg) {
    if (!cpuReg.has(kernel)) continue; // a CPU-only helper export such as matmulPart
    if (cpuReg.get(kernel) !== file)
      bad.push(`kernel ${kernel} is in engine/cpu/kernels/${cpuReg.get(kernel)}.ts but engine/wgsl/kernels/${file}.ts`);
  }
  return bad;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const root = resolve(import.meta.dirname, '..');
  const problems = [
    ...layerViolations(root),
    ...opFileMismatches(root),
    ...importCycles(root).map((c) => `import cycle among ${c.join(', ')}`),
  ];
  for (const p of problems) console.log(p);
  console.log(problems.length ? `${problems.length} problems` : 'layers, op files and imports in order');
  process.exitCode = problems.length ? 1 : 0;
}
