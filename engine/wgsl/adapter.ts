// Is a WebGPU adapter a GPU, or software rendering on the CPU? `--backend auto` takes WebGPU only
// on a hardware adapter: a software one (Mesa's lavapipe/llvmpipe, SwiftShader, Microsoft's WARP)
// runs the kernels at CPU speed, several times slower than the CPU backend.
//
// What Dawn (npm `webgpu` 0.6.2) reports for Mesa 25.0.7's lavapipe: vendor 'mesa', architecture
// 'software', device 'llvmpipe-llvm-15-0-6-256-bits-', description 'llvmpipe: Mesa 25.0.7-2~bpo12+1
// (LLVM 15.0.6) 0.0.1', info.isFallbackAdapter true. For an NVIDIA H100: vendor 'nvidia',
// architecture e.g. 'hopper', description 'NVIDIA H100 80GB HBM3', isFallbackAdapter false.

/** The adapter fields the classifier reads (GPUAdapterInfo, plus the older adapter-level flag). */
export interface AdapterFacts {
  vendor?: string;
  architecture?: string;
  device?: string;
  description?: string;
  /** GPUAdapterInfo.isFallbackAdapter (or the older GPUAdapter.isFallbackAdapter) */
  isFallbackAdapter?: boolean;
  /** an adapter type where an implementation exposes one ('discrete-gpu', 'integrated-gpu', 'cpu') */
  adapterType?: string;
}

/** An adapter as the run records it (steps/step00-setup.ts writes it into setup.json). */
export interface AdapterSummary {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  software: boolean;
  /** why it counts as software or hardware, in a few words */
  why: string;
}

// Names of software rasterisers; 'mesa' alone is not one (Mesa also drives Intel and AMD GPUs).
const SOFTWARE_NAMES = /llvmpipe|lavapipe|softpipe|swiftshader|\bwarp\b|basic render driver/i;

/**
 * Software when the implementation says so (isFallbackAdapter, an adapter type or architecture of
 * 'cpu', architecture 'software', which Dawn gives Mesa's CPU drivers), or when any field names a
 * software rasteriser (llvmpipe, lavapipe, softpipe, SwiftShader, WARP / Microsoft Basic Render
 * Driver). Anything else is hardware, including an adapter that reports no names at all (a
 * browser may hide them).
 */
export function classifyAdapter(f: AdapterFacts): AdapterSummary {
  const s = (v: string | undefined) => (v ?? '').trim();
  const base = { vendor: s(f.vendor), architecture: s(f.architecture), device: s(f.device), description: s(f.description) };
  const soft = (why: string): AdapterSummary => ({ ...base, software: true, why });
  if (f.isFallbackAdapter === true) return soft('the implementation marks it a fallback (software) adapter');
  const type = s(f.adapterType).toLowerCase();
  const arch = base.architecture.toLowerCase();
  if (type === 'cpu' || arch === 'cpu') return soft("adapter type 'cpu'");
  if (arch === 'software') return soft("architecture 'software'");
  const named = [base.vendor, base.architecture, base.device, base.description].join(' ').match(SOFTWARE_NAMES);
  if (named) return soft(`named ${named[0].toLowerCase()}, a software rasteriser`);
  const any = base.vendor || base.architecture || base.device || base.description;
  return { ...base, software: false, why: any ? 'no sign of a software rasteriser' : 'reports no names (taken as hardware)' };
}

/** The classifier's input from a live adapter. */
export function adapterFacts(adapter: GPUAdapter): AdapterFacts {
  const info = (adapter.info ?? {}) as Partial<GPUAdapterInfo> & { adapterType?: string; type?: string };
  const old = (adapter as unknown as { isFallbackAdapter?: boolean }).isFallbackAdapter;
  return {
    vendor: info.vendor,
    architecture: info.architecture,
    device: info.device,
    description: info.description,
    isFallbackAdapter: info.isFallbackAdapter ?? old,
    adapterType: info.adapterType ?? info.type,
  };
}

/** "mesa software: llvmpipe: Mesa 25.0.7 ..." (vendor and architecture, then the description). */
export function adapterLabel(a: AdapterSummary): string {
  const what = [a.vendor, a.architecture].filter(Boolean).join(' ');
  return `${what || 'unknown adapter'}${a.description ? `: ${a.description}` : ''}`;
}
