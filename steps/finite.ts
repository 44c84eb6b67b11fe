// Numerical guards on what steps write. JSON.stringify turns NaN and +-Infinity into null without a
// word, so a NaN in a result would reach the report as a blank; a NaN activation or weight in a
// safetensors file would poison every later step that reads it. The rule: a non-finite number in a
// JSON value is an error naming the file and the JSON path (a step that means "no value" writes null
// itself), and a non-finite float in a safetensors tensor an error naming the file, the tensor and
// the first bad flat index. The runner checks a step's folder before moving it into place, so a
// failing step leaves the previous result as it was.
import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { firstNonFinite } from '../mamba/fetch-checkpoint.ts';
import { openSafetensors } from '../mamba/safetensors.ts';

/** The JSON path (`a.b[3].c`) and value of the first non-finite number in `value`, or null. */
export function firstNonFiniteJson(value: unknown, path = ''): { path: string; value: number } | null {
  if (typeof value === 'number') return Number.isFinite(value) ? null : { path: path || '(top level)', value };
  if (value === null || typeof value !== 'object') return null;
  // what JSON.stringify would write: toJSON first (Date and the like), typed arrays as objects
  const v = typeof (value as { toJSON?: unknown }).toJSON === 'function' ? (value as { toJSON: () => unknown }).toJSON() : value;
  if (v !== value) return firstNonFiniteJson(v, path);
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const bad = firstNonFiniteJson(value[i], `${path}[${i}]`);
      if (bad) return bad;
    }
    return null;
  }
  if (ArrayBuffer.isView(value) && !(value instanceof DataView)) {
    const bad = firstNonFinite(value as unknown as ArrayLike<number>);
    return bad ? { path: `${path}[${bad.index}]`, value: bad.value } : null;
  }
  for (const [k, x] of Object.entries(value)) {
    const bad = firstNonFiniteJson(x, path ? `${path}.${k}` : k);
    if (bad) return bad;
  }
  return null;
}

/** Throws, naming `file` and the JSON path, when `value` holds NaN or +-Infinity. */
export function checkFiniteJson(value: unknown, file: string): void {
  const bad = firstNonFiniteJson(value);
  if (bad)
    throw new Error(`${file}: ${bad.path} is ${bad.value}, which JSON would write as null (a step writes null itself for "no value")`);
}

/** The .safetensors files under `dir`, recursively, sorted. */
function safetensorsUnder(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...safetensorsUnder(p));
    else if (e.isFile() && e.name.endsWith('.safetensors')) out.push(p);
  }
  return out.sort();
}

/**
 * Throws at the first NaN or +-Inf in a float tensor of any safetensors file under `dir`, naming
 * the file (relative to `root`), the tensor, its shape and the flat index. Reads one tensor at a time.
 */
export async function checkFiniteTensors(dir: string, root = dir): Promise<void> {
  for (const path of safetensorsUnder(dir)) {
    const f = await openSafetensors(path);
    try {
      for (const name of f.names) {
        const rec = await f.read(name);
        if (rec.data instanceof Int32Array) continue;
        const bad = firstNonFinite(rec.data);
        if (bad)
          throw new Error(
            `${relative(root, path)}: tensor "${name}" holds ${bad.value} at flat index ${bad.index} (of shape [${rec.shape}])`,
          );
      }
    } finally {
      await f.close();
    }
  }
}

/**
 * `x`, or null where it is NaN by design, e.g. the t interval of fewer than 2 seeds in a table cell:
 * the explicit "no value" that JSON.stringify used to write for any NaN. Use it only where NaN is
 * the documented result, not to silence a NaN of unknown origin.
 */
export function orNull(x: number): number | null {
  return Number.isNaN(x) ? null : x;
}
