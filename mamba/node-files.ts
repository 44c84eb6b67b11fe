// Atomic file writes, the one implementation in the project: a file is written under a temporary
// name next to it (same folder, so the same file system and an atomic rename) and renamed into
// place; if the write or the rename fails, the temporary file is removed and whatever was at the
// path before is left untouched. So an interrupted run never leaves a half-written file behind.
//
// This module loads node:fs only when called, so that modules which must also run in a browser
// (mamba/config.ts, bundled by scripts/build-browser.ts) can import it: a static `node:` import
// would stop the whole bundle from loading in a page. Node-only callers that write synchronously
// (steps/files.ts) pass in the node:fs module they import themselves.

/** The node:fs calls the atomic writer makes (the node:fs module itself satisfies it). */
export type AtomicFs = Pick<typeof import('node:fs'), 'renameSync' | 'unlinkSync'>;

/** The temporary name a write to `path` goes through: beside it, and different for each process. */
export function atomicTempPath(path: string): string {
  return `${path}.tmp-${process.pid}`;
}

/**
 * Creates `path` atomically: `write(tmp)` writes the whole file at the temporary name `tmp` (and
 * closes it), then `tmp` is renamed onto `path`. If `write` throws or rejects, or the rename fails,
 * `tmp` is removed and the error rethrown.
 */
export async function atomicWrite(path: string, write: (tmp: string) => Promise<void>): Promise<void> {
  const fs = await import('node:fs');
  await replaceVia(fs, path, write);
}

/** atomicWrite with a synchronous `write`, for Node-only callers that hold node:fs (`fs`). */
export function atomicWriteSync(fs: AtomicFs, path: string, write: (tmp: string) => void): void {
  replaceVia(fs, path, write);
}

/** Writes a text file (UTF-8) atomically. */
export async function writeTextAtomic(path: string, text: string): Promise<void> {
  const { writeFile } = await import('node:fs/promises');
  await atomicWrite(path, (tmp) => writeFile(tmp, text, 'utf-8'));
}

// The temporary name, the rename and the clean-up, for a synchronous `write` (returning nothing)
// and an asynchronous one (returning a promise, which is then what this returns).
function replaceVia(fs: AtomicFs, path: string, write: (tmp: string) => void | Promise<void>): void | Promise<void> {
  const tmp = atomicTempPath(path);
  const fail = (e: unknown): never => {
    try {
      fs.unlinkSync(tmp);
    } catch {
      // no temporary file (the write failed before creating it); the write's error is the one to report
    }
    throw e;
  };
  const commit = (): void => {
    try {
      fs.renameSync(tmp, path);
    } catch (e) {
      fail(e);
    }
  };
  let pending: void | Promise<void>;
  try {
    pending = write(tmp);
  } catch (e) {
    return fail(e);
  }
  if (pending instanceof Promise) return pending.then(commit, fail);
  commit();
}
