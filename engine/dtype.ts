// Element types. float32 is the default and the only float type the WebGPU backend has;
// float64 exists on the CPU backend for gradient checks and reference comparisons; int32 holds
// indices and targets.
export type DType = 'float32' | 'float64' | 'int32';
export type TypedArray = Float32Array | Float64Array | Int32Array;

export function arrayFor(dtype: DType, size: number): TypedArray {
  switch (dtype) {
    case 'float32':
      return new Float32Array(size);
    case 'float64':
      return new Float64Array(size);
    case 'int32':
      return new Int32Array(size);
  }
}

export function dtypeOfArray(a: TypedArray): DType {
  if (a instanceof Float32Array) return 'float32';
  if (a instanceof Float64Array) return 'float64';
  return 'int32';
}

export function bytesPer(dtype: DType): number {
  return dtype === 'float64' ? 8 : 4;
}

export function isFloat(dtype: DType): boolean {
  return dtype !== 'int32';
}

/** Copies `src` into a new array of `dtype` (rounding through that type's storage). */
export function convertArray(src: ArrayLike<number>, dtype: DType): TypedArray {
  const out = arrayFor(dtype, src.length);
  if (dtype === 'int32') for (let i = 0; i < src.length; i++) out[i] = Math.trunc(src[i]);
  else out.set(src as ArrayLike<number>);
  return out;
}
