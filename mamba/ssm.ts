// The selective-scan stage of the Mamba mixer: the fused scan kernel for whole sequences, a
// single recurrent step built from elementwise ops (used for decoding and for patching a state),
// and the split scan that lets a hook replace the state at chosen positions.
import * as mi from '../engine/index.ts';
import type { Tensor } from '../engine/index.ts';

export interface ScanStageInputs {
  /** [batch,T,E] scan input u (SiLU of the conv) */ u: Tensor;
  /** [batch,T,E] delta, raw (with deltaBias + softplus still to apply) when `fused`, else final */ delta: Tensor;
  /** [E] dt_proj.bias, applied in the kernel when fused */ deltaBias: Tensor | null;
  fused: boolean;
  /** [E,N] */ A: Tensor;
  /** [batch,T,N] */ B: Tensor;
  /** [batch,T,N] */ C: Tensor;
  /** [E] */ D: Tensor;
  /** [batch,T,E] gate, or null to return the ungated C.h + D*u */ z: Tensor | null;
  /** initial state [batch,E,N] or null for zeros */ h0: Tensor | null;
  returnStates: boolean;
}

export interface ScanStageOutputs {
  y: Tensor;
  hT: Tensor;
  hs?: Tensor;
}

/** The positive step size at one position [batch,E] from the delta tensor the stage holds. */
function finalDelta(s: ScanStageInputs, d: Tensor): Tensor {
  if (!s.fused) return d;
  return mi.softplus(s.deltaBias ? mi.add(d, s.deltaBias) : d);
}

/**
 * One recurrent step with explicit ops: h' = exp(delta A) h + delta B u, y = C.h' + D u (times
 * SiLU(z) when given). Shapes: u, delta, z [batch,E]; B, C [batch,N]; h [batch,E,N].
 * `patch`, when given, may replace h' before y is read from it.
 */
export function ssmStep(
  u: Tensor,
  delta: Tensor,
  A: Tensor,
  B: Tensor,
  C: Tensor,
  D: Tensor,
  z: Tensor | null,
  h: Tensor | null,
  patch?: (h: Tensor) => Tensor,
): { y: Tensor; h: Tensor } {
  const d3 = mi.unsqueeze(delta, 2); // [batch,E,1]
  const decay = mi.exp(mi.mul(d3, A)); // [batch,E,N]
  const input = mi.mul(mi.mul(d3, mi.unsqueeze(u, 2)), mi.unsqueeze(B, 1)); // [batch,E,N]
  let hNew = h ? mi.add(mi.mul(decay, h), input) : input;
  if (patch) hNew = patch(hNew);
  let y = mi.add(mi.sum(mi.mul(hNew, mi.unsqueeze(C, 1)), 2), mi.mul(u, D));
  if (z) y = mi.mul(y, mi.silu(z));
  return { y, h: hNew };
}

function fusedScan(s: ScanStageInputs, t0: number, t1: number, h0: Tensor | null): ScanStageOutputs {
  const cut = (x: Tensor) => mi.slice(x, 1, t0, t1);
  const r = mi.selectiveScan({
    x: cut(s.u),
    delta: cut(s.delta),
    A: s.A,
    B: cut(s.B),
    C: cut(s.C),
    D: s.D,
    z: s.z ? cut(s.z) : null,
    h0,
    deltaBias: s.fused ? s.deltaBias : null,
    deltaSoftplus: s.fused,
    returnStates: s.returnStates,
  });
  return r;
}

/**
 * Scans the whole sequence. With `positions` (sorted), the state after each listed position is
 * passed to `patch`, and everything after reads the (possibly replaced) state.
 */
export function scanStage(s: ScanStageInputs, positions: number[] = [], patch?: (h: Tensor, t: number) => Tensor): ScanStageOutputs {
  if (!positions.length) return fusedScan(s, 0, s.u.shape[1], s.h0);
  const T = s.u.shape[1];
  const ys: Tensor[] = [];
  const hss: Tensor[] = [];
  let h = s.h0;
  let start = 0;
  const at = (x: Tensor, t: number) => mi.squeeze(mi.slice(x, 1, t, t + 1), 1);
  for (const p of positions) {
    if (p > start) {
      const seg = fusedScan(s, start, p, h);
      ys.push(seg.y);
      if (seg.hs) hss.push(seg.hs);
      h = seg.hT;
    }
    const step = ssmStep(at(s.u, p), finalDelta(s, at(s.delta, p)), s.A, at(s.B, p), at(s.C, p), s.D, s.z ? at(s.z, p) : null, h, (hp) =>
      patch ? patch(hp, p) : hp,
    );
    ys.push(mi.unsqueeze(step.y, 1));
    if (s.returnStates) hss.push(mi.unsqueeze(step.h, 1));
    h = step.h;
    start = p + 1;
  }
  if (start < T) {
    const seg = fusedScan(s, start, T, h);
    ys.push(seg.y);
    if (seg.hs) hss.push(seg.hs);
    h = seg.hT;
  }
  return { y: mi.concat(ys, 1), hT: h!, hs: s.returnStates ? mi.concat(hss, 1) : undefined };
}
