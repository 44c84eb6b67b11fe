// Runs the uvu suites under test/ (all files named *.test.ts, or those whose path contains one of
// the arguments) in this process, then prints uvu's totals as one line: "N passed, N failed".
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

function findTests(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) return findTests(p);
      return name.endsWith('.test.ts') ? [p] : [];
    });
}

const root = resolve(import.meta.dirname, '..');
const filters = parseArgs({ allowPositionals: true }).positionals;
const files = findTests(join(root, 'test')).filter((f) => !filters.length || filters.some((s) => f.includes(s)));
if (!files.length) {
  console.error(`test: no test files match ${filters.join(' ')}`);
  process.exit(1);
}

// Capture uvu's "Total/Passed/Skipped" lines to print the one-line summary CI reads.
let out = '';
const write = process.stdout.write.bind(process.stdout);
process.stdout.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
  out += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString();
  if (out.length > 4096) out = out.slice(-4096);
  return (write as (...a: unknown[]) => boolean)(chunk, ...rest);
}) as typeof process.stdout.write;

const g = globalThis as unknown as { UVU_DEFER: number; UVU_INDEX: number; UVU_QUEUE: unknown[][] };
g.UVU_DEFER = 1;
g.UVU_QUEUE = [];
const uvu = await import('uvu');
// A file that throws while loading (a missing fixture, a syntax error) counts as one failure and
// the other files still run.
const loadFailures: string[] = [];
for (const [i, file] of files.entries()) {
  g.UVU_INDEX = i;
  g.UVU_QUEUE.push([relative(root, file)]);
  // node:test runs its tests on import, beside uvu's, and they are not in the totals below
  if (/from ['"]node:test['"]/.test(readFileSync(file, 'utf8'))) {
    loadFailures.push(`${relative(root, file)}: imports node:test, whose results this runner does not count; use uvu`);
    continue;
  }
  try {
    await import(pathToFileURL(file).href);
  } catch (e) {
    loadFailures.push(`${relative(root, file)}: ${(e as Error).stack ?? e}`);
  }
}
await uvu.exec(false);
for (const f of loadFailures) console.error(`\n  FAIL  could not load ${f}\n`);
process.stdout.write = write;
// biome-ignore lint/suspicious/noControlCharactersInRegex: strips the ANSI colour codes uvu prints
const plain = out.replace(/\x1b\[[0-9;]*m/g, '');
const num = (label: string) => Number(plain.match(new RegExp(`${label}:\\s+(\\d+)`))?.[1] ?? NaN);
const total = num('Total'),
  passed = num('Passed'),
  skipped = num('Skipped');
const failed = total - passed - skipped + loadFailures.length;
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
if (failed > 0 || Number.isNaN(failed)) process.exitCode = 1;
