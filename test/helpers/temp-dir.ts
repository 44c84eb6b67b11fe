// A test body run in a fresh temporary directory that is removed afterwards, pass or fail
// (test/mamba/checkpoint.test.ts, node-files.test.ts, test/scripts/layers.test.ts).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The test function: makes a directory named prefix..., runs body in it, then removes it. */
export function withTempDir(prefix: string, body: (dir: string) => Promise<void> | void): () => Promise<void> {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), prefix));
    try {
      await body(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}
