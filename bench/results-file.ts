// bench/RESULTS.md is shared by the benchmark scripts: each owns one "## " section and replaces
// only that one, leaving the others as they are.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

/** Replaces (or appends) the section that starts with `heading` (e.g. "## Model") with `section`. */
export function writeResultsSection(heading: string, section: string): void {
  const path = new URL('./RESULTS.md', import.meta.url);
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
