// File helpers for run artefacts: every write goes to a temporary name first and is renamed into
// place, so a run that stops never leaves a half-written file behind (mamba/node-files.ts does the
// temporary name, the rename and the clean-up after a failed write).
import * as fs from 'node:fs';
import { dirname } from 'node:path';
import { atomicWriteSync } from '../mamba/node-files.ts';
import { checkFiniteJson } from './finite.ts';

/** Writes `path` (creating its folder) via a temporary file and a rename. */
export function writeAtomic(path: string, data: string | Uint8Array): void {
  fs.mkdirSync(dirname(path), { recursive: true });
  atomicWriteSync(fs, path, (tmp) => fs.writeFileSync(tmp, data));
}

/** Writes `value` as JSON; a NaN or Infinity in it is an error naming the path (steps/finite.ts). */
export function writeJsonAtomic(path: string, value: unknown): void {
  checkFiniteJson(value, path);
  writeAtomic(path, `${JSON.stringify(value, null, 2)}\n`);
}

export function readJson<T = unknown>(path: string, what = path): T {
  let text: string;
  try {
    text = fs.readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`${what}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new Error(`${what}: not valid JSON (${(e as Error).message})`);
  }
}

/**
 * Checks that `dir` can be a run directory without creating anything: the nearest folder that
 * exists on its path must be a folder we may write into (a probe folder made and removed there,
 * no recursive mkdir into e.g. /proc, which spins), and `dir` itself, if it exists, a folder.
 */
export function checkRunDirWritable(dir: string): void {
  let at = dir;
  while (!fs.existsSync(at)) {
    const up = dirname(at);
    if (up === at) break;
    at = up;
  }
  if (!fs.statSync(at).isDirectory()) throw new Error(`--out ${dir}: ${at} is a file, not a folder`);
  let probe: string;
  try {
    probe = fs.mkdtempSync(`${at}/.mi-probe-`);
  } catch (e) {
    throw new Error(`--out ${dir}: cannot write in ${at} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  fs.rmdirSync(probe);
}
