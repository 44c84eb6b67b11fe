// The fused sparse autoencoder on the CPU, forward and backward (maths in engine/ops/sae.ts), one
// row at a time with float64 accumulators. The pre-activations are rounded to the output dtype
// before the top-k selection, so the selected values are exactly what is stored (as the composed
// path selects from a float32 tensor). Selection keeps a heap of the k best (value, index) pairs:
// O(L log k) per row. The backward visits only the active latents of each row (the k top-k ones
// and the kAux AuxK ones, or the positive entries of a ReLU row), so the decoder rows and encoder
// columns it touches are those latents' only.
import type { TypedArray } from '../../dtype.ts';
import type { KernelParams, SaeKernelParams } from '../../kernels.ts';

/** Does (a, ia) rank before (b, ib)? NaN first (by index), then larger values, then lower indices; -0 ties +0. */
function before(a: number, ia: number, b: number, ib: number): boolean {
  const na = Number.isNaN(a),
    nb = Number.isNaN(b);
  if (na || nb) return na && nb ? ia < ib : na;
  if (a !== b) return a > b;
  return ia < ib;
}

/**
 * The k best entries of v[0..n) in rank order into vals/idx (offset `at`): a heap whose root is the
 * worst entry kept, then a sort of the k survivors.
 */
function selectTop(
  v: Float64Array,
  n: number,
  k: number,
  vals: TypedArray,
  idx: TypedArray,
  at: number,
  hv: Float64Array,
  hi: Int32Array,
): void {
  let size = 0;
  /** exchanges heap entries a and b (value and index) */
  const swap = (a: number, b: number) => {
    const tv = hv[a],
      ti = hi[a];
    hv[a] = hv[b];
    hi[a] = hi[b];
    hv[b] = tv;
    hi[b] = ti;
  };
  // root = the entry that ranks last among those kept
  const siftDown = (i: number) => {
    for (;;) {
      const l = 2 * i + 1,
        r = l + 1;
      let w = i;
      if (l < size && before(hv[w], hi[w], hv[l], hi[l])) w = l;
      if (r < size && before(hv[w], hi[w], hv[r], hi[r])) w = r;
      if (w === i) return;
      swap(i, w);
      i = w;
    }
  };
  for (let j = 0; j < n; j++) {
    const x = v[j];
    if (size < k) {
      let i = size++;
      hv[i] = x;
      hi[i] = j;
      while (i > 0) {
        const par = (i - 1) >> 1;
        if (!before(hv[par], hi[par], hv[i], hi[i])) break;
        swap(i, par);
        i = par;
      }
    } else if (before(x, j, hv[0], hi[0])) {
      hv[0] = x;
      hi[0] = j;
      siftDown(0);
    }
  }
  const order = Array.from({ length: size }, (_, i) => i).sort((a, b) => (before(hv[a], hi[a], hv[b], hi[b]) ? -1 : 1));
  for (let j = 0; j < size; j++) {
    vals[at + j] = hv[order[j]];
    idx[at + j] = hi[order[j]];
  }
}

const act = (v: number) => (v > 0 ? v : 0);

/** A float64 copy (the kernels' inner loops then read plain local arrays, not views of the shared heap). */
const local = (a: TypedArray) => Float64Array.from(a);

export function sae(ins: TypedArray[], outs: TypedArray[], p: KernelParams['sae']): void {
  const [x, , be, , bd, dead] = ins;
  const We = local(ins[1]),
    Wd = local(ins[3]);
  const { rows, d, latents: L, kind, k, l1, kAux } = p;
  const round = outs[outs.length - 1] instanceof Float32Array ? Math.fround : (v: number) => v;
  const xc = new Float64Array(d),
    pre = new Float64Array(L),
    rec = new Float64Array(d),
    ehat = new Float64Array(d);
  const heapSize = Math.max(k, kAux, 1);
  const hv = new Float64Array(heapSize),
    hi = new Int32Array(heapSize);
  const [z, values, indices, recon, loss, auxValues, auxIndices, auxLoss] =
    kind === 'relu' ? [outs[0], null, null, outs[1], outs[2], null, null, null] : [null, ...outs];
  for (let r = 0; r < rows; r++) {
    const xo = r * d;
    for (let j = 0; j < d; j++) xc[j] = x[xo + j] - bd[j];
    pre.fill(0);
    for (let j = 0; j < d; j++) {
      const v = xc[j],
        base = j * L;
      for (let l = 0; l < L; l++) pre[l] += v * We[base + l];
    }
    for (let l = 0; l < L; l++) pre[l] = round(pre[l] + be[l]);
    for (let j = 0; j < d; j++) rec[j] = bd[j];
    let sumAct = 0;
    if (z) {
      for (let l = 0; l < L; l++) {
        const a = act(pre[l]);
        z[r * L + l] = a;
        if (a === 0) continue;
        sumAct += a;
        const base = l * d;
        for (let j = 0; j < d; j++) rec[j] += a * Wd[base + j];
      }
    } else {
      selectTop(pre, L, k, values!, indices!, r * k, hv, hi);
      for (let j = 0; j < k; j++) {
        const a = act(values![r * k + j]);
        if (a === 0) continue;
        sumAct += a;
        const base = indices![r * k + j] * d;
        for (let q = 0; q < d; q++) rec[q] += a * Wd[base + q];
      }
    }
    let err = 0;
    for (let j = 0; j < d; j++) {
      err += (rec[j] - x[xo + j]) ** 2;
      recon![xo + j] = rec[j];
    }
    loss![r] = err + l1 * sumAct;
    if (kAux > 0) {
      for (let l = 0; l < L; l++) if (dead[l] === 0) pre[l] = -Infinity;
      selectTop(pre, L, kAux, auxValues!, auxIndices!, r * kAux, hv, hi);
      ehat.fill(0);
      for (let j = 0; j < kAux; j++) {
        const a = act(auxValues![r * kAux + j]);
        if (a === 0) continue;
        const base = auxIndices![r * kAux + j] * d;
        for (let q = 0; q < d; q++) ehat[q] += a * Wd[base + q];
      }
      let aerr = 0;
      for (let j = 0; j < d; j++) aerr += (ehat[j] - (x[xo + j] - rec[j])) ** 2;
      auxLoss![r] = aerr;
    }
  }
}

/** Splits the flag-dependent input list of sae_bwd. */
function bwdInputs(ins: TypedArray[], p: SaeKernelParams & { hasGRecon: boolean; hasGLatents: boolean }) {
  let i = 5;
  const lat = p.kind === 'relu' ? [ins[i++]] : [ins[i++], ins[i++]];
  const recon = ins[i++];
  const aux = p.kAux > 0 ? [ins[i++], ins[i++]] : [];
  const gloss = ins[i++];
  const gaux = p.kAux > 0 ? ins[i++] : null;
  const grecon = p.hasGRecon ? ins[i++] : null;
  const glat = p.hasGLatents ? ins[i++] : null;
  return { lat, recon, aux, gloss, gaux, grecon, glat };
}

export function sae_bwd(ins: TypedArray[], outs: TypedArray[], p: KernelParams['sae_bwd']): void {
  const [x, , , , bd] = ins;
  const We = local(ins[1]),
    Wd = local(ins[3]);
  const { rows, d, latents: L, kind, k, l1, kAux } = p;
  const { lat, recon, aux, gloss, gaux, grecon, glat } = bwdInputs(ins, p);
  const [dx, dWe, dbe, dWd, dbd] = outs;
  const gWe = new Float64Array(d * L),
    gbe = new Float64Array(L),
    gWd = new Float64Array(L * d),
    gbd = new Float64Array(d);
  const G = new Float64Array(d),
    Gaux = new Float64Array(d),
    xc = new Float64Array(d),
    dxc = new Float64Array(d);
  // the row's active latents and the gradients of their pre-activations (a latent may be both a
  // TopK and an AuxK one); the encoder side runs once per row, over these or, when they are many
  // (ReLU), densely over every latent with contiguous loops
  const activeL = new Int32Array(k + kAux + (kind === 'relu' ? L : 0)),
    activeD = new Float64Array(activeL.length),
    dpre = new Float64Array(L);
  let nActive = 0;
  // one active latent l of this row: activation a, gradient dv of its pre-activation, decoder cotangent g
  const visit = (l: number, a: number, dv: number, g: Float64Array) => {
    const dec = l * d;
    for (let j = 0; j < d; j++) gWd[dec + j] += a * g[j];
    gbe[l] += dv;
    activeL[nActive] = l;
    activeD[nActive++] = dv;
  };
  const encoderSide = () => {
    if (4 * nActive < L) {
      for (let j = 0; j < d; j++) {
        const v = xc[j],
          base = j * L;
        let s = 0;
        for (let q = 0; q < nActive; q++) {
          const l = activeL[q],
            dv = activeD[q];
          gWe[base + l] += dv * v;
          s += dv * We[base + l];
        }
        dxc[j] = s;
      }
      return;
    }
    dpre.fill(0);
    for (let q = 0; q < nActive; q++) dpre[activeL[q]] += activeD[q];
    for (let j = 0; j < d; j++) {
      const v = xc[j],
        base = j * L;
      let s = 0;
      for (let l = 0; l < L; l++) {
        gWe[base + l] += v * dpre[l];
        s += dpre[l] * We[base + l];
      }
      dxc[j] = s;
    }
  };
  const dot = (g: Float64Array, l: number) => {
    let s = 0;
    const dec = l * d;
    for (let j = 0; j < d; j++) s += g[j] * Wd[dec + j];
    return s;
  };
  for (let r = 0; r < rows; r++) {
    const xo = r * d,
      gl = gloss[r];
    for (let j = 0; j < d; j++) {
      G[j] = 2 * gl * (recon[xo + j] - x[xo + j]) + (grecon ? grecon[xo + j] : 0);
      xc[j] = x[xo + j] - bd[j];
      dxc[j] = 0;
    }
    if (kind === 'relu') {
      const z = lat[0];
      for (let l = 0; l < L; l++) {
        const a = z[r * L + l];
        if (!(a > 0)) continue;
        visit(l, a, dot(G, l) + l1 * gl + (glat ? glat[r * L + l] : 0), G);
      }
    } else {
      const [values, indices] = lat;
      for (let j = 0; j < k; j++) {
        const v = values[r * k + j];
        if (!(v > 0)) continue;
        const l = indices[r * k + j];
        visit(l, v, dot(G, l) + l1 * gl + (glat ? glat[r * k + j] : 0), G);
      }
    }
    if (kAux > 0) {
      const [auxValues, auxIndices] = aux;
      const ga = gaux![r];
      for (let j = 0; j < d; j++) Gaux[j] = 0;
      for (let j = 0; j < kAux; j++) {
        const a = act(auxValues[r * kAux + j]);
        if (a === 0) continue;
        const dec = auxIndices[r * kAux + j] * d;
        for (let q = 0; q < d; q++) Gaux[q] += a * Wd[dec + q];
      }
      // d auxLoss / d ehat, with the residual x - recon held constant
      for (let j = 0; j < d; j++) Gaux[j] = 2 * ga * (Gaux[j] - (x[xo + j] - recon[xo + j]));
      for (let j = 0; j < kAux; j++) {
        const v = auxValues[r * kAux + j];
        if (!(v > 0)) continue;
        const l = auxIndices[r * kAux + j];
        visit(l, v, dot(Gaux, l), Gaux);
      }
    }
    encoderSide();
    nActive = 0;
    for (let j = 0; j < d; j++) {
      dx[xo + j] = -2 * gl * (recon[xo + j] - x[xo + j]) + dxc[j];
      gbd[j] += G[j] - dxc[j];
    }
  }
  dWe.set(gWe);
  dbe.set(gbe);
  dWd.set(gWd);
  dbd.set(gbd);
}
