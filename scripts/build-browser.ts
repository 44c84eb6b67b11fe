// Builds the browser bundle: browser.ts -> dist/browser/mamba-interp.js (one ESM file with
// a source map). `webgpu` and `node:*` are external, so the Node-only dynamic imports that name
// them stay dynamic imports that a page never runs; test/browser/bundle.test.ts checks that no static one
// is left. Usage: npx tsx scripts/build-browser.ts [outfile] [--minify]
import { build, type BuildOptions, type BuildResult, type Plugin } from 'esbuild';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

export const ROOT = resolve(import.meta.dirname, '..');
export const ENTRY = resolve(ROOT, 'browser.ts');
export const DEFAULT_OUTFILE = resolve(ROOT, 'dist/browser/mamba-interp.js');

/** esbuild options shared by the library bundle and the test pages that bundle engine code. */
export const BROWSER_OPTIONS: BuildOptions = {
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  external: ['webgpu', 'node:*'],
  // engine code reads process.env only behind `typeof process !== 'undefined'`
  logLevel: 'silent',
};

/**
 * For a page script built separately from the library: its imports of browser.ts load the bundle
 * (./mamba-interp.js, served beside it) instead of a second copy of the library.
 */
export const libraryFromBundle: Plugin = {
  name: 'library-from-bundle',
  setup(b) {
    b.onResolve({ filter: /(^|\/)browser\.ts$/ }, (args) =>
      resolve(args.resolveDir, args.path) === ENTRY ? { path: './mamba-interp.js', external: true } : undefined,
    );
  },
};

export async function buildBrowserBundle(
  outfile = DEFAULT_OUTFILE,
  opts: { minify?: boolean } = {},
): Promise<BuildResult & { outfile: string }> {
  const result = await build({
    ...BROWSER_OPTIONS,
    entryPoints: [ENTRY],
    outfile,
    sourcemap: true,
    minify: opts.minify ?? false,
    metafile: true,
  });
  if (result.errors.length) throw new Error(`build-browser: ${result.errors.map((e) => e.text).join('; ')}`);
  return { ...result, outfile };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { values, positionals } = parseArgs({ options: { minify: { type: 'boolean' } }, allowPositionals: true });
  if (positionals.length > 1) throw new Error(`build-browser: one outfile at most, got ${positionals.join(' ')}`);
  const outfile = resolve(positionals[0] ?? DEFAULT_OUTFILE);
  const { metafile, warnings } = await buildBrowserBundle(outfile, { minify: values.minify });
  for (const w of warnings)
    console.warn(`build-browser: warning: ${w.text}${w.location ? ` (${w.location.file}:${w.location.line})` : ''}`);
  const bytes = Object.values(metafile!.outputs).find((o) => o.entryPoint)?.bytes ?? 0;
  console.log(`build-browser: ${outfile} (${(bytes / 1024).toFixed(0)} KiB, ${Object.keys(metafile!.inputs).length} modules)`);
}
