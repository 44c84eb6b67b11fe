// File helpers for run artefacts: every write goes to a temporary name first and is renamed into
// place, so a run that stops never leaves a half-written file behind (mamba/node-files.ts does the
// temporary name, the rename and the clean-up after a failed write).
import * as fs from 'node:fs';
import { dirname } from 'node:path';
import { atomicWriteSync } from '../mamba/node-files.ts';

/** Writes `path` (creating its folder) via a temporary file and a rename. */
export function writeAtomic(path: string, data: string | Uint8Array): void {
  fs.mkdirSync(dirname(path), { recursive: true });
  atomicWriteSync(fs, path, (tmp) => fs.writeFileSync(tmp, data));
}

export function writeJsonAtomic(path: string, value: unknown): void {
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
