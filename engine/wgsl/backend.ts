// The WebGPU backend. Kernel modules (engine/wgsl/kernels) plan compute passes; this file owns the
// device and runs those plans:
// - buffers come from a pool keyed by byte size class;
// - pipelines are compiled once per WGSL source;
// - passes are recorded into one command encoder and submitted together: whenever a read or flush
//   happens, and otherwise at a threshold of passes that starts small after each wait (the device
//   is idle then: give it work soon) and doubles with each submission up to MAX_SUBMIT_PASSES (a
//   busy device needs no more submissions); a read copies its buffer in the same submission, so
//   reading back is the only wait and costs one submission; `stats` counts them;
// - device errors are caught in error scopes and thrown, naming the kernel and pass, from the next
//   call of the backend (run, read, flush), since WebGPU reports them asynchronously;
// - profile(fn) times every pass of fn on the GPU with timestamp queries (profile.ts).
//
// Why a freed buffer may be handed out again at once, even while the encoder being recorded still
// uses it: passes recorded later in the same encoder run after the earlier ones (WebGPU orders the
// dispatches of a compute pass, with the barriers they need), and the queue runs submissions and
// queue.writeBuffer calls in the order they were issued. The one hazard is a writeBuffer into a
// buffer the not-yet-submitted encoder uses: it would overtake that work. So each GPU buffer
// remembers the submission that last bound it, and write() submits the encoder first when that is
// the one being recorded. (A training step thus reuses its own temporaries within one submission.)
import type { Backend, Buffer } from '../backend.ts';
import { bytesPer, type DType, type TypedArray } from '../dtype.ts';
import type { KernelName, KernelParams } from '../kernels.ts';
import type { AdapterSummary } from './adapter.ts';
import { acquireDevice, type AcquiredDevice } from './device.ts';
import type { BufferInfo, ComputePass, DeviceFacts } from './kernel.ts';
import { WGSL_KERNELS } from './kernels/index.ts';
import { type KernelProfile, type PassTime, summarise } from './profile.ts';

/** Passes recorded before the encoder is submitted without being asked: after a wait, then doubling. */
const FIRST_SUBMIT_PASSES = 64;
const MAX_SUBMIT_PASSES = 1024;
/** Bytes of one uniform arena buffer; a submission takes as many as its passes fill. */
const UNIFORM_ARENA_BYTES = 64 * 1024;
/** Passes one submission can time in profiling mode (two timestamps each). */
const TIMED_PASSES = 256;

export class WgslBuffer implements Buffer {
  constructor(
    readonly dtype: DType,
    readonly size: number,
    public gpu: GPUBuffer | null,
    readonly classBytes: number,
  ) {}
}

interface Pipeline {
  pipeline: GPUComputePipeline;
  /** Bind-group creation is checked in an error scope the first time a pipeline is used. */
  used: boolean;
}

/** One submission being recorded. */
interface Batch {
  encoder: GPUCommandEncoder;
  /** the one compute pass every dispatch goes into; null in profiling mode (a pass per dispatch) */
  pass: GPUComputePassEncoder | null;
  /** profiling mode: the query set and what each pair of timestamps times */
  timed: { set: GPUQuerySet; passes: { kernel: string; label: string }[] } | null;
  passes: number;
  labels: string[];
  /** uniform blocks of the passes, packed into arenas (the last one is being filled) */
  arenas: Arena[];
}

interface Arena {
  gpu: GPUBuffer;
  data: Uint8Array;
  bytes: number;
}

/** What a backend has done since it was made: for tests and benchmarks that count synchronisation. */
export interface WgslStats {
  /** queue submissions (each read is one, with the passes recorded before it) */
  submits: number;
  /** buffers read back to the host (each waits for the device) */
  readbacks: number;
  /** compute dispatches recorded */
  dispatches: number;
}

const USAGE = () => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

/** Byte size classes: powers of two up to 4 KiB, then eighths of a power of two (<= 12.5% waste). */
function sizeClass(bytes: number): number {
  const b = Math.max(256, bytes);
  const p = 2 ** Math.ceil(Math.log2(b));
  if (p <= 4096) return p;
  const step = p / 8;
  return Math.ceil(b / step) * step;
}

export class WebGpuBackend implements Backend {
  readonly name = 'webgpu' as const;
  readonly description: string;
  /** Vendor, architecture, description of the adapter, and whether it is a software one. */
  readonly adapterInfo: AdapterSummary;
  readonly device: GPUDevice;
  readonly facts: DeviceFacts;
  /** Held so that Dawn's GPU object lives as long as the device (see device.ts). */
  private readonly acquired: AcquiredDevice;
  private readonly pool = new Map<number, GPUBuffer[]>();
  private readonly arenas: Arena[] = [];
  /** The submission that last bound each GPU buffer (see the header: write() submits before overtaking it). */
  private readonly boundIn = new WeakMap<GPUBuffer, number>();
  /** Passes at which the encoder being recorded is submitted unasked. */
  private submitAt = FIRST_SUBMIT_PASSES;
  /** Counts of submissions, readbacks and dispatches. */
  readonly stats: WgslStats = { submits: 0, readbacks: 0, dispatches: 0 };
  private readonly pipelines = new Map<string, Pipeline>();
  private readonly uniformAlign: number;
  private batch: Batch | null = null;
  /** Number of the next submission (the one being recorded). */
  private batchNo = 0;
  private live = 0;
  /** GPU buffers made for tensors and scratch so far (the pool makes this stop growing). */
  buffersCreated = 0;
  /** Error-scope results not yet looked at. */
  private checks: Promise<void>[] = [];
  private failure: Error | null = null;
  /** Order in which the pending checks were issued: the earliest error is the cause of the rest. */
  private failureSeq = Infinity;
  private checkSeq = 0;
  private lost: string | null = null;
  /** Set while profile() runs: pass times read back so far, and the readbacks still pending. */
  private profiling: { times: PassTime[]; invalid: number; pending: Promise<void>[] } | null = null;
  /** The kernel whose passes are being recorded (for the profile's table). */
  private kernelName = '';

  constructor(acquired: AcquiredDevice) {
    this.acquired = acquired;
    this.device = acquired.device;
    this.description = acquired.description;
    this.adapterInfo = acquired.adapterInfo;
    const lim = this.device.limits;
    this.uniformAlign = lim.minUniformBufferOffsetAlignment;
    const sg = acquired.features.has('subgroups')
      ? (acquired.adapter.info as unknown as { subgroupMinSize?: number; subgroupMaxSize?: number })
      : null;
    this.facts = {
      maxWorkgroupSize: lim.maxComputeInvocationsPerWorkgroup,
      maxWorkgroupStorage: lim.maxComputeWorkgroupStorageSize,
      maxWorkgroupsPerDimension: lim.maxComputeWorkgroupsPerDimension,
      ...(sg?.subgroupMinSize ? { subgroupSizes: { min: sg.subgroupMinSize, max: sg.subgroupMaxSize ?? sg.subgroupMinSize } } : {}),
    };
    this.device.lost.then((info) => {
      this.lost = `webgpu: device lost (${info.reason}): ${info.message}`;
    });
    this.device.addEventListener('uncapturederror', (ev) => {
      this.fail(new Error(`webgpu: uncaptured device error: ${(ev as GPUUncapturedErrorEvent).error.message}`));
    });
  }

  /** The adapter behind the device (kept reachable with the GPU object). */
  get adapter(): GPUAdapter {
    return this.acquired.adapter;
  }

  supports(dtype: DType): boolean {
    return dtype === 'float32' || dtype === 'int32';
  }

  alloc(dtype: DType, size: number): WgslBuffer {
    this.checkHealth();
    if (!this.supports(dtype)) throw new Error(`webgpu: no ${dtype} buffers (float32 and int32 only)`);
    const bytes = size * bytesPer(dtype);
    const limit = this.device.limits.maxStorageBufferBindingSize;
    if (bytes > limit) {
      throw new Error(
        `webgpu: a ${dtype} tensor of ${size} elements needs ${bytes} bytes, more than this device's maxStorageBufferBindingSize of ${limit} bytes`,
      );
    }
    // a size class past maxBufferSize falls back to the exact size (rounded to 4 bytes)
    const rounded = sizeClass(bytes);
    const cls = rounded <= this.device.limits.maxBufferSize ? rounded : Math.max(4, Math.ceil(bytes / 4) * 4);
    this.live++;
    return new WgslBuffer(dtype, size, this.takeGpuBuffer(cls, `${dtype}[${size}]`), cls);
  }

  write(buf: Buffer, data: TypedArray): void {
    const b = this.own(buf, 'write');
    if (data.length !== b.size) throw new Error(`webgpu write: ${data.length} elements into a buffer of ${b.size}`);
    if (b.size === 0) return;
    // a write is queued ahead of the encoder being recorded: submit that first if it uses the buffer
    if (this.batch && this.boundIn.get(b.gpu!) === this.batchNo) this.submit();
    const typed =
      b.dtype === 'int32'
        ? data instanceof Int32Array
          ? data
          : Int32Array.from(data, (v) => Math.trunc(v))
        : data instanceof Float32Array
          ? data
          : Float32Array.from(data);
    this.device.queue.writeBuffer(b.gpu!, 0, typed.buffer, typed.byteOffset, typed.byteLength);
  }

  async read(buf: Buffer): Promise<TypedArray> {
    const b = this.own(buf, 'read');
    const out = b.dtype === 'int32' ? new Int32Array(b.size) : new Float32Array(b.size);
    if (b.size === 0) {
      await this.settle();
      return out;
    }
    const bytes = b.size * 4;
    const staging = this.device.createBuffer({ size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, label: 'readback' });
    try {
      // the copy goes at the end of the passes recorded so far, in the same submission
      this.recording();
      this.submit({ copy: { src: b.gpu!, dst: staging, bytes, what: `the readback of a ${b.dtype}[${b.size}] buffer` } });
      this.stats.readbacks++;
      await staging.mapAsync(GPUMapMode.READ);
      this.submitAt = FIRST_SUBMIT_PASSES;
      await this.settle();
      out.set(new (out.constructor as Int32ArrayConstructor | Float32ArrayConstructor)(staging.getMappedRange()));
      staging.unmap();
      return out;
    } finally {
      staging.destroy();
    }
  }

  run<K extends KernelName>(kernel: K, inputs: Buffer[], outputs: Buffer[], params: KernelParams[K]): void {
    this.checkHealth();
    const impl = WGSL_KERNELS[kernel];
    if (!impl) throw new Error(`webgpu backend: no WGSL kernel '${kernel}' yet`);
    const ins = inputs.map((b) => this.own(b, kernel));
    const outs = outputs.map((b) => this.own(b, kernel));
    const plan = impl(ins as BufferInfo[], outs as BufferInfo[], params, this.facts);
    checkStorageBindings(kernel, plan.passes, this.device.limits.maxStorageBuffersPerShaderStage);
    this.kernelName = kernel;
    const scratch = (plan.scratch ?? []).map((bytes) => {
      const cls = sizeClass(Math.max(4, bytes));
      return { gpu: this.takeGpuBuffer(cls, `${kernel} scratch`), bytes: Math.max(4, Math.ceil(bytes / 4) * 4), cls };
    });
    try {
      for (const pass of plan.passes) this.record(pass, ins, outs, scratch);
    } finally {
      // scratch is free again for later passes (see the header)
      for (const s of scratch) this.toPool(s.gpu);
    }
    if (this.batch && this.batch.passes >= this.submitAt) this.submit();
  }

  free(buf: Buffer): void {
    const b = this.own(buf, 'free');
    const gpu = b.gpu!;
    b.gpu = null;
    this.live--;
    this.toPool(gpu);
  }

  async flush(): Promise<void> {
    this.submit();
    await this.device.queue.onSubmittedWorkDone();
    this.submitAt = FIRST_SUBMIT_PASSES;
    await this.settle();
  }

  liveBuffers(): number {
    return this.live;
  }

  /** Whether profile() can time passes here (the adapter has 'timestamp-query'). */
  get canProfile(): boolean {
    return this.acquired.features.has('timestamp-query');
  }

  /**
   * Runs fn (and waits for its GPU work) with every pass timed on the GPU by timestamp queries:
   * each dispatch goes into a compute pass of its own, so the times are per kernel pass (with a
   * little more overhead than normal batching). Returns fn's result and the table (profile.ts),
   * slowest first. Throws when the adapter has no 'timestamp-query' or a profile is running.
   */
  async profile<T>(fn: () => T | Promise<T>): Promise<{ result: T; profile: KernelProfile }> {
    if (!this.canProfile) throw new Error(`webgpu: profile: this adapter (${this.description}) has no 'timestamp-query' feature`);
    if (this.profiling) throw new Error('webgpu: profile: a profile is already running');
    this.submit(); // passes recorded before are not part of the profile
    const prof = { times: [] as PassTime[], invalid: 0, pending: [] as Promise<void>[] };
    this.profiling = prof;
    const t0 = performance.now();
    try {
      const result = await fn();
      await this.flush();
      const wallMs = performance.now() - t0;
      this.profiling = null;
      await Promise.all(prof.pending);
      return { result, profile: summarise(prof.times, wallMs, prof.invalid) };
    } finally {
      if (this.profiling === prof) {
        this.submit();
        this.profiling = null;
      }
    }
  }

  /** Destroys every pooled buffer (the live ones stay); for long runs that changed sizes. */
  trimPool(): void {
    this.submit(); // the encoder being recorded may bind pooled buffers
    for (const list of this.pool.values()) for (const g of list) g.destroy();
    this.pool.clear();
  }

  /**
   * Compiles WGSL in its own error scope and throws its compilation errors, with line numbers,
   * without marking the backend failed. For kernel authors and tests.
   */
  async checkWgsl(code: string, label: string): Promise<void> {
    const err = await this.compile(code, label).check;
    if (err) throw err;
  }

  // ---- internals --------------------------------------------------------------------------

  private own(buf: Buffer, what: string): WgslBuffer {
    if (!(buf instanceof WgslBuffer)) throw new Error(`webgpu backend: ${what} got a buffer of another backend`);
    if (buf.gpu === null) throw new Error(`webgpu backend: ${what} on a freed buffer`);
    return buf;
  }

  private checkHealth(): void {
    if (this.lost) throw new Error(this.lost);
    if (this.failure) throw this.failure;
  }

  /**
   * Remembers the device error of the earliest check (later ones are usually its consequences,
   * e.g. "invalid pipeline" after a compile error); every later call throws it.
   */
  private fail(e: Error, seq = this.checkSeq++): void {
    if (seq < this.failureSeq) {
      this.failure = e;
      this.failureSeq = seq;
    }
  }

  private watch(scope: Promise<GPUError | Error | null>, describe: (e: GPUError | Error) => string | Promise<string>): void {
    const seq = this.checkSeq++;
    this.checks.push(
      scope.then(async (e) => {
        if (e) this.fail(new Error(await describe(e)), seq);
      }),
    );
  }

  /** Waits for every pending error scope and throws the first error. */
  private async settle(): Promise<void> {
    while (this.checks.length) {
      const pending = this.checks;
      this.checks = [];
      await Promise.all(pending);
    }
    this.checkHealth();
  }

  private takeGpuBuffer(cls: number, label: string): GPUBuffer {
    const reused = this.pool.get(cls)?.pop();
    if (reused) return reused;
    this.device.pushErrorScope('out-of-memory');
    const gpu = this.device.createBuffer({ size: cls, usage: USAGE(), label });
    this.buffersCreated++;
    this.watch(this.device.popErrorScope(), (e) => `webgpu: out of memory allocating ${cls} bytes for ${label}: ${e.message}`);
    return gpu;
  }

  private toPool(gpu: GPUBuffer): void {
    const list = this.pool.get(gpu.size);
    if (list) list.push(gpu);
    else this.pool.set(gpu.size, [gpu]);
  }

  private compile(code: string, label: string): { pipeline: GPUComputePipeline; check: Promise<Error | null> } {
    this.device.pushErrorScope('validation');
    this.device.pushErrorScope('out-of-memory');
    const module = this.device.createShaderModule({ code, label });
    const pipeline = this.device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' }, label });
    const oom = this.device.popErrorScope();
    const validation = this.device.popErrorScope();
    const check = Promise.all([oom, validation]).then(async ([o, v]) => {
      if (o) return new Error(`webgpu: out of memory compiling '${label}': ${o.message}`);
      if (!v) return null;
      const info = await module.getCompilationInfo();
      const lines = code.split('\n');
      const msgs = info.messages
        .filter((m) => m.type === 'error')
        .map((m) => `  line ${m.lineNum}:${m.linePos}: ${m.message}\n    ${lines[m.lineNum - 1]?.trim() ?? ''}`);
      return new Error(
        msgs.length
          ? `webgpu: WGSL of '${label}' does not compile:\n${msgs.join('\n')}`
          : `webgpu: pipeline '${label}' is invalid: ${v.message}`,
      );
    });
    return { pipeline, check };
  }

  private pipelineFor(code: string, label: string): Pipeline {
    let p = this.pipelines.get(code);
    if (!p) {
      const { pipeline, check } = this.compile(code, label);
      this.watch(check, (e) => e.message);
      p = { pipeline, used: false };
      this.pipelines.set(code, p);
    }
    return p;
  }

  private takeArena(): Arena {
    const a = this.arenas.pop();
    if (a) {
      a.bytes = 0;
      return a;
    }
    const gpu = this.device.createBuffer({
      size: UNIFORM_ARENA_BYTES,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
      label: 'uniform arena',
    });
    return { gpu, data: new Uint8Array(UNIFORM_ARENA_BYTES), bytes: 0 };
  }

  private recording(): Batch {
    if (!this.batch) {
      const encoder = this.device.createCommandEncoder({ label: `mi submission ${this.batchNo}` });
      this.batch = {
        encoder,
        pass: this.profiling ? null : encoder.beginComputePass({ label: 'mi batch' }),
        timed: this.profiling
          ? { set: this.device.createQuerySet({ type: 'timestamp', count: 2 * TIMED_PASSES, label: 'mi profile' }), passes: [] }
          : null,
        passes: 0,
        labels: [],
        arenas: [this.takeArena()],
      };
    }
    return this.batch;
  }

  private record(pass: ComputePass, ins: WgslBuffer[], outs: WgslBuffer[], scratch: { gpu: GPUBuffer; bytes: number }[]): void {
    let [x, y, z] = pass.workgroups;
    if (x === 0 || y === 0 || z === 0) return; // nothing to do (empty tensor)
    const max = this.facts.maxWorkgroupsPerDimension;
    if (x > max) {
      if (!pass.foldable || y !== 1)
        throw new Error(`webgpu: '${pass.label}' needs ${x} workgroups in x (limit ${max}) and cannot be folded`);
      y = Math.ceil(x / max);
      x = Math.ceil(x / y);
    }
    if (y > max || z > max) throw new Error(`webgpu: '${pass.label}' needs ${y} x ${z} workgroups in y, z (limit ${max})`);

    const uniformBytes = pass.uniforms?.byteLength ?? 0;
    if (uniformBytes > UNIFORM_ARENA_BYTES) throw new Error(`webgpu: '${pass.label}' has ${uniformBytes} bytes of uniforms`);
    if (this.batch?.timed && this.batch.timed.passes.length >= TIMED_PASSES) this.submit();
    const batch = this.recording();
    const pipe = this.pipelineFor(pass.code, pass.label);

    const entries: GPUBindGroupEntry[] = [];
    if (pass.uniforms) {
      let arena = batch.arenas[batch.arenas.length - 1];
      if (arena.bytes + uniformBytes > UNIFORM_ARENA_BYTES) {
        arena = this.takeArena();
        batch.arenas.push(arena);
      }
      const offset = arena.bytes;
      arena.data.set(new Uint8Array(pass.uniforms), offset);
      arena.bytes = Math.ceil((offset + uniformBytes) / this.uniformAlign) * this.uniformAlign;
      entries.push({ binding: 0, resource: { buffer: arena.gpu, offset, size: uniformBytes } });
    }
    pass.bindings.forEach((ref, k) => {
      let gpu: GPUBuffer;
      let size: number;
      if (ref.kind === 'scratch') {
        const s = scratch[ref.index];
        if (!s) throw new Error(`webgpu: '${pass.label}' binds scratch ${ref.index}, the plan has ${scratch.length}`);
        ({ gpu, bytes: size } = s);
      } else {
        const b = (ref.kind === 'input' ? ins : outs)[ref.index];
        if (!b) throw new Error(`webgpu: '${pass.label}' binds ${ref.kind} ${ref.index}, which the kernel was not given`);
        gpu = b.gpu!;
        size = Math.max(4, b.size * 4);
      }
      this.boundIn.set(gpu, this.batchNo);
      entries.push({ binding: k + 1, resource: { buffer: gpu, offset: 0, size } });
    });

    const firstUse = !pipe.used;
    if (firstUse) this.device.pushErrorScope('validation');
    const group = this.device.createBindGroup({ layout: pipe.pipeline.getBindGroupLayout(0), entries, label: pass.label });
    if (firstUse) {
      pipe.used = true;
      this.watch(this.device.popErrorScope(), (e) => `webgpu: binding the buffers of '${pass.label}' failed: ${e.message}`);
    }
    const timed = batch.timed;
    const at = timed ? 2 * timed.passes.length : 0;
    const cp =
      batch.pass ??
      batch.encoder.beginComputePass({
        label: pass.label,
        ...(timed && { timestampWrites: { querySet: timed.set, beginningOfPassWriteIndex: at, endOfPassWriteIndex: at + 1 } }),
      });
    cp.setPipeline(pipe.pipeline);
    cp.setBindGroup(0, group);
    cp.dispatchWorkgroups(x, y, z);
    if (!batch.pass) cp.end();
    timed?.passes.push({ kernel: this.kernelName, label: pass.label });
    batch.passes++;
    this.stats.dispatches++;
    batch.labels.push(pass.label);
  }

  /**
   * Profiling: records, at the end of a submission's encoder, the copy of its timestamps into a
   * mappable buffer; returns what reads them into `into` once the submission is out.
   */
  private resolveTimes(
    encoder: GPUCommandEncoder,
    timed: { set: GPUQuerySet; passes: { kernel: string; label: string }[] },
    into: { times: PassTime[]; invalid: number },
  ): () => Promise<void> {
    const n = timed.passes.length;
    const bytes = 16 * n;
    const resolved = this.device.createBuffer({
      size: bytes,
      usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
      label: 'mi profile resolve',
    });
    const staging = this.device.createBuffer({
      size: bytes,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
      label: 'mi profile read',
    });
    encoder.resolveQuerySet(timed.set, 0, 2 * n, resolved, 0);
    encoder.copyBufferToBuffer(resolved, 0, staging, 0, bytes);
    return () =>
      staging
        .mapAsync(GPUMapMode.READ)
        .then(() => {
          const t = new BigUint64Array(staging.getMappedRange().slice(0));
          staging.unmap();
          timed.passes.forEach((p, k) => {
            const ns = Number(t[2 * k + 1] - t[2 * k]);
            if (!(ns >= 0) || t[2 * k] === 0n) into.invalid++;
            into.times.push({ ...p, ns: ns >= 0 ? ns : 0 });
          });
        })
        .finally(() => {
          staging.destroy();
          resolved.destroy();
          timed.set.destroy();
        });
  }

  /**
   * Submits the batch being recorded, if any, with `copy` (a readback's copy into its staging
   * buffer) after its passes.
   */
  private submit(extra: { copy?: { src: GPUBuffer; dst: GPUBuffer; bytes: number; what: string } } = {}): void {
    const batch = this.batch;
    if (!batch) return;
    this.batch = null;
    batch.pass?.end();
    const readTimes = batch.timed?.passes.length && this.profiling ? this.resolveTimes(batch.encoder, batch.timed, this.profiling) : null;
    const { copy } = extra;
    this.device.pushErrorScope('validation');
    this.device.pushErrorScope('out-of-memory');
    if (copy) batch.encoder.copyBufferToBuffer(copy.src, 0, copy.dst, 0, copy.bytes);
    const commands = batch.encoder.finish();
    for (const a of batch.arenas) if (a.bytes) this.device.queue.writeBuffer(a.gpu, 0, a.data, 0, a.bytes);
    this.device.queue.submit([commands]);
    this.stats.submits++;
    if (batch.passes) this.submitAt = Math.min(MAX_SUBMIT_PASSES, this.submitAt * 2);
    const labels = batch.labels.length > 8 ? [...batch.labels.slice(0, 8), `... ${batch.labels.length - 8} more`] : batch.labels;
    const what = `submission ${this.batchNo} (passes: ${labels.join(', ') || 'none'}${copy ? `; then ${copy.what}` : ''})`;
    this.watch(this.device.popErrorScope(), (e) => `webgpu: out of memory in ${what}: ${e.message}`);
    this.watch(this.device.popErrorScope(), (e) => `webgpu: validation error in ${what}: ${e.message}`);
    if (readTimes) this.profiling?.pending.push(readTimes());
    else batch.timed?.set.destroy();
    this.batchNo++;
    this.arenas.push(...batch.arenas);
  }
}

/**
 * Throws, naming the kernel and pass, when a pass binds more storage buffers than the device
 * allows per shader stage (the spec guarantees 8; Chromium on SwiftShader has 10). Checked before
 * anything is recorded: otherwise the pipeline would fail validation asynchronously, later.
 */
export function checkStorageBindings(kernel: string, passes: readonly ComputePass[], limit: number): void {
  for (const pass of passes) {
    if (pass.bindings.length > limit) {
      throw new Error(
        `webgpu: kernel '${kernel}', pass '${pass.label}' binds ${pass.bindings.length} storage buffers, more than this device's maxStorageBuffersPerShaderStage of ${limit}`,
      );
    }
  }
}

let created: Promise<WebGpuBackend> | null = null;

/**
 * The WebGPU backend (one per process: an adapter gives one device). Throws when there is no
 * adapter.
 */
export function createWebGpuBackend(): Promise<WebGpuBackend> {
  created ??= acquireDevice()
    .then((d) => new WebGpuBackend(d))
    .catch((e) => {
      created = null;
      throw e;
    });
  return created;
}
