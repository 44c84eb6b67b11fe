// The Mamba selective scan as one fused op with its own backward.
//
// For each batch b, channel e and state n, with delta = softplus(delta_in + bias) when asked:
//   Abar_t = exp(delta_t A[e,n]),  h_t = Abar_t h_{t-1} + delta_t B_t[n] x_t      (h_{-1} = h0)
//   y_t = (sum_n C_t[n] h_t[n] + D[e] x_t) * silu(z_t)
import { record } from '../autograd/tape.ts';
import type { ScanParams } from '../kernels.ts';
import { shapeStr } from '../shape.ts';
import { full, type Tensor } from '../tensor.ts';
import { assertFloat, runKernel } from './run.ts';

export interface SelectiveScanInputs {
  /** [batch, T, E] */ x: Tensor;
  /** [batch, T, E]: the step size (already positive, or raw with deltaSoftplus) */ delta: Tensor;
  /** [E, N] (negative for a stable system) */ A: Tensor;
  /** [batch, T, N] */ B: Tensor;
  /** [batch, T, N] */ C: Tensor;
  /** [E] skip connection */ D?: Tensor | null;
  /** [batch, T, E] gate: y *= silu(z) */ z?: Tensor | null;
  /** [batch, E, N] initial state */ h0?: Tensor | null;
  /** [E] added to delta before the softplus */ deltaBias?: Tensor | null;
  deltaSoftplus?: boolean;
  /** also return every state, hs [batch, T, E, N] */ returnStates?: boolean;
}

export interface SelectiveScanOutputs {
  y: Tensor;
  /** final state [batch, E, N] */ hT: Tensor;
  /** all states [batch, T, E, N], when asked for */ hs?: Tensor;
}

function expect(name: string, t: Tensor, shape: number[]): void {
  if (t.rank !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    throw new Error(`selectiveScan: ${name} has shape ${shapeStr(t.shape)}, expected ${shapeStr(shape)}`);
  }
}

export function selectiveScan(inp: SelectiveScanInputs): SelectiveScanOutputs {
  const { x, delta, A, B, C } = inp;
  if (x.rank !== 3) throw new Error(`selectiveScan: x has shape ${shapeStr(x.shape)}, expected [batch, T, E]`);
  const [batch, T, E] = x.shape;
  if (A.rank !== 2) throw new Error(`selectiveScan: A has shape ${shapeStr(A.shape)}, expected [E, N]`);
  const N = A.shape[1];
  expect('delta', delta, [batch, T, E]);
  expect('A', A, [E, N]);
  expect('B', B, [batch, T, N]);
  expect('C', C, [batch, T, N]);
  if (inp.D) expect('D', inp.D, [E]);
  if (inp.z) expect('z', inp.z, [batch, T, E]);
  if (inp.h0) expect('h0', inp.h0, [batch, E, N]);
  if (inp.deltaBias) expect('deltaBias', inp.deltaBias, [E]);
  const optional = [inp.D, inp.z, inp.h0, inp.deltaBias].filter((t): t is Tensor => !!t);
  const inputs = [x, delta, A, B, C, ...optional];
  assertFloat('selectiveScan', ...inputs);
  for (const t of inputs) {
    if (t.dtype !== x.dtype) throw new Error(`selectiveScan: mixed dtypes ${x.dtype} and ${t.dtype}`);
  }
  const p: ScanParams = {
    batch,
    T,
    E,
    N,
    hasD: !!inp.D,
    hasZ: !!inp.z,
    hasH0: !!inp.h0,
    hasDeltaBias: !!inp.deltaBias,
    deltaSoftplus: !!inp.deltaSoftplus,
    saveStates: !!inp.returnStates,
  };
  const dtype = x.dtype;
  const outSpecs = [
    { shape: [batch, T, E], dtype },
    { shape: [batch, E, N], dtype },
  ];
  if (p.saveStates) outSpecs.push({ shape: [batch, T, E, N], dtype });
  const outs = runKernel('scan', inputs, outSpecs, p);
  record('selectiveScan', inputs, outs, ([dy, dhT, dhs]) => {
    const gy = dy ?? zerosFor(outs[0]);
    const extra = [dhT, dhs].filter((t): t is Tensor => !!t);
    const gradSpecs = inputs.map((t) => ({ shape: t.shape, dtype }));
    const grads = runKernel('scan_bwd', [...inputs, gy, ...extra], gradSpecs, { ...p, saveStates: false, hasDhT: !!dhT, hasDhs: !!dhs });
    if (!dy) gy.dispose();
    return grads;
  });
  return { y: outs[0], hT: outs[1], hs: outs[2] };
}

function zerosFor(t: Tensor): Tensor {
  return full(t.shape, 0, { dtype: t.dtype, backend: t.backend });
}
