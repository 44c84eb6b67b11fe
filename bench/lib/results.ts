// What the benchmark scripts share (bench/index.ts runs every file in bench/ but not this folder):
// their flags, and bench/RESULTS.md, where each owns one "## " section and replaces only that one,
// leaving the others as they are.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { UsageError } from '../../steps/cli-main.ts';

/**
 * --quick (fewer sizes and iterations), --write (update bench/RESULTS.md), and the script's own
 * boolean flags `extra` (e.g. 'small'); anything else is a UsageError (one error line, exit 2).
 */
export function benchFlags<E extends string = never>(
  script: string,
  extra: readonly E[] = [],
): { quick: boolean; write: boolean } & Record<E, boolean> {
  const options: Record<string, { type: 'boolean' }> = { quick: { type: 'boolean' }, write: { type: 'boolean' } };
  for (const e of extra) options[e] = { type: 'boolean' };
  try {
    const { values } = parseArgs({ options });
    return Object.fromEntries(Object.keys(options).map((k) => [k, values[k] === true])) as { quick: boolean; write: boolean } & Record<
      E,
      boolean
    >;
  } catch (e) {
    const flags = Object.keys(options).map((k) => `--${k}`);
    throw new UsageError(`${script}: ${(e as Error).message.split('\n')[0]} (flags: ${flags.join(', ')})`);
  }
}

/** Replaces (or appends) the section that starts with `heading` (e.g. "## Model") with `section`. */
export function writeResultsSection(heading: string, section: string): void {
  const path = new URL('../RESULTS.md', import.meta.url);
  const old = existsSync(path) ? readFileSync(path, 'utf8') : '# Benchmark results\n\n';
  const start = old.indexOf(heading);
  let next: string;
  if (start < 0) next = `${old.trimEnd()}\n\n${section}`;
  else {
    const after = old.indexOf('\n## ', start + 1);
    next = old.slice(0, start) + section + (after < 0 ? '' : `\n${old.slice(after + 1)}`);
  }
  writeFileSync(path, next.replace(/\n{3,}/g, '\n\n'));
  console.log(`wrote the "${heading}" section of bench/RESULTS.md`);
}
