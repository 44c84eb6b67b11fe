// Seeded randomness. One Rng per purpose, forked by name from a run seed, so adding a random draw
// in one place does not shift the numbers drawn in another. Same seed, same numbers, bit for bit.
import seedrandom from 'seedrandom';
import type { Backend } from './backend.ts';
import { arrayFor, type DType } from './dtype.ts';
import { sizeOf, type Shape } from './shape.ts';
import { tensor, type Tensor } from './tensor.ts';

export class Rng {
  private readonly prng: seedrandom.PRNG;
  private spare: number | null = null;

  constructor(readonly seed: string | number) {
    this.prng = seedrandom(String(seed));
  }

  /** An independent stream for `name`, determined by this stream's seed alone. */
  fork(name: string): Rng {
    return new Rng(`${this.seed}/${name}`);
  }

  /** Uniform in [0, 1), 53 bits. */
  uniform(): number {
    return this.prng.double();
  }

  /** Standard normal (Box-Muller, both values used). */
  normal(): number {
    if (this.spare !== null) {
      const s = this.spare;
      this.spare = null;
      return s;
    }
    let u = 0;
    while (u === 0) u = this.uniform();
    const v = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** Integer in [lo, hi). */
  int(lo: number, hi: number): number {
    if (!(hi > lo)) throw new Error(`Rng.int: empty range [${lo}, ${hi})`);
    return lo + Math.floor(this.uniform() * (hi - lo));
  }

  /** A uniformly random permutation of 0..n-1 (Fisher-Yates). */
  permutation(n: number): number[] {
    const p = Array.from({ length: n }, (_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = this.int(0, i + 1);
      [p[i], p[j]] = [p[j], p[i]];
    }
    return p;
  }

  /** k distinct integers from [0, n), in random order. */
  sample(n: number, k: number): number[] {
    return this.permutation(n).slice(0, k);
  }
}

export interface RandomOptions {
  dtype?: DType;
  backend?: Backend;
  requiresGrad?: boolean;
}

function fillTensor(shape: Shape, opts: RandomOptions, draw: () => number): Tensor {
  const dtype = opts.dtype ?? 'float32';
  const a = arrayFor(dtype, sizeOf(shape));
  for (let i = 0; i < a.length; i++) a[i] = draw();
  return tensor(a, shape, { dtype, backend: opts.backend, requiresGrad: opts.requiresGrad });
}

/** Normal(mean, std) samples. */
export function randn(shape: Shape, rng: Rng, opts: RandomOptions & { mean?: number; std?: number } = {}): Tensor {
  const { mean = 0, std = 1 } = opts;
  return fillTensor(shape, opts, () => mean + std * rng.normal());
}

/** Uniform samples in [lo, hi). */
export function rand(shape: Shape, rng: Rng, opts: RandomOptions & { lo?: number; hi?: number } = {}): Tensor {
  const { lo = 0, hi = 1 } = opts;
  return fillTensor(shape, opts, () => lo + (hi - lo) * rng.uniform());
}

/** Integers in [lo, hi) (int32 unless asked otherwise). */
export function randint(shape: Shape, lo: number, hi: number, rng: Rng, opts: RandomOptions = {}): Tensor {
  return fillTensor(shape, { dtype: 'int32', ...opts }, () => rng.int(lo, hi));
}
