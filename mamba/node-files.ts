// File helpers for Node that load node:fs only when called, so that modules which must also run in
// a browser (mamba/config.ts, bundled by scripts/build-browser.ts) can import them: a static
// `node:` import would stop the whole bundle from loading in a page.

/** Writes a text file via a temporary file and a rename. */
export async function writeTextAtomic(path: string, text: string): Promise<void> {
  const { rename, unlink, writeFile } = await import('node:fs/promises');
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    await writeFile(tmp, text, 'utf-8');
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
}
