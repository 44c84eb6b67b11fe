// Malformed Hugging Face checkpoint folders, each made from the tiny fixture
// (../shared/fixtures/hf-mamba/tiny/model) by one change, with a pattern the loader's error must
// match: it names the file, the tensor or the config field. The bytes are laid out here by hand
// (not by mamba/safetensors.ts's writer), so a reader bug cannot be mirrored by a writer bug.
// Used in-process by test/mamba/checkpoint-validation.test.ts and through the CLIs by
// test/reliability/checkpoints.test.ts.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FIXTURES } from './hf-fixture.ts';

const TINY = join(FIXTURES, 'tiny', 'model');

export interface RawTensor {
  name: string;
  dtype: string;
  shape: number[];
  bytes: Uint8Array;
}

/** The tiny fixture's tensors, in file order, with their raw bytes, and its config.json. */
export function tinyFixture(): { tensors: RawTensor[]; config: Record<string, unknown> } {
  const file = readFileSync(join(TINY, 'model.safetensors'));
  const n = Number(file.readBigUInt64LE(0));
  const header = JSON.parse(file.subarray(8, 8 + n).toString('utf-8')) as Record<
    string,
    { dtype: string; shape: number[]; data_offsets: [number, number] }
  >;
  const data = file.subarray(8 + n);
  const tensors = Object.entries(header)
    .filter(([k]) => k !== '__metadata__')
    .map(([name, e]) => ({
      name,
      dtype: e.dtype,
      shape: e.shape,
      bytes: new Uint8Array(data.subarray(e.data_offsets[0], e.data_offsets[1])),
    }))
    .sort((a, b) => header[a.name].data_offsets[0] - header[b.name].data_offsets[0]);
  return { tensors, config: JSON.parse(readFileSync(join(TINY, 'config.json'), 'utf-8')) };
}

/** Header entries laid end to end (as a correct writer does), before any mutation. */
export function layout(tensors: readonly RawTensor[]): Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }> {
  const header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }> = {};
  let at = 0;
  for (const t of tensors) {
    header[t.name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: [at, at + t.bytes.length] };
    at += t.bytes.length;
  }
  return header;
}

/** A safetensors file: 8-byte length, header text, data bytes. */
export function rawSafetensors(headerText: string, data: Uint8Array, lengthField?: bigint): Buffer {
  const h = Buffer.from(headerText, 'utf-8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(lengthField ?? BigInt(h.length));
  return Buffer.concat([len, h, data]);
}

const concat = (tensors: readonly RawTensor[]) => Buffer.concat(tensors.map((t) => t.bytes));

export interface MalformedCase {
  name: string;
  /** writes the broken checkpoint folder into `dir` (which exists and is empty) */
  build(dir: string): void;
  /** what the one-line error must match */
  expect: RegExp;
}

/** A float32 tensor's bytes with `value` written at flat index `index`. */
function withValue(t: RawTensor, index: number, value: number): RawTensor {
  const bytes = new Uint8Array(t.bytes);
  new DataView(bytes.buffer).setFloat32(4 * index, value, true);
  return { ...t, bytes };
}

type Tensors = RawTensor[];
type Header = ReturnType<typeof layout>;

/**
 * Every case. `file(edit)` writes config.json unchanged and a model.safetensors whose tensors,
 * header and bytes `edit` may change; `config(edit)` the fixture's tensors with an edited config.
 */
export function malformedCases(): MalformedCase[] {
  const { tensors, config } = tinyFixture();
  const writeConfig = (dir: string, c: unknown) => writeFileSync(join(dir, 'config.json'), JSON.stringify(c));
  const goodFile = () => rawSafetensors(JSON.stringify(layout(tensors)), concat(tensors));
  const st = (dir: string) => join(dir, 'model.safetensors');

  const file =
    (edit: (ts: Tensors, h: Header) => { header?: string; data?: Uint8Array; raw?: Buffer } | undefined, c: unknown = config) =>
    (dir: string) => {
      const ts = tensors.map((t) => ({ ...t, shape: [...t.shape] }));
      const h = layout(ts);
      const out = edit(ts, h) ?? {};
      writeConfig(dir, c);
      writeFileSync(st(dir), out.raw ?? rawSafetensors(out.header ?? JSON.stringify(h), out.data ?? concat(ts)));
    };
  const cfg = (edit: (c: Record<string, unknown>) => unknown) => (dir: string) => {
    writeConfig(dir, edit({ ...config }));
    writeFileSync(st(dir), goodFile());
  };
  const field = (f: string, v: unknown, expect: RegExp): MalformedCase => ({
    name: `config ${f} = ${JSON.stringify(v)}`,
    build: cfg((c) => ({ ...c, [f]: v })),
    expect,
  });
  const first = tensors[0].name;
  const last = tensors[tensors.length - 1].name;
  const re = (...parts: string[]) => new RegExp(parts.map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*'));

  // Sharded folders: the data split in two shards with an index naming them.
  const sharded = (editIndex: (weightMap: Record<string, string>) => unknown) => (dir: string) => {
    writeConfig(dir, config);
    const half = Math.floor(tensors.length / 2);
    const parts = [tensors.slice(0, half), tensors.slice(half)];
    const names = ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors'];
    const weightMap: Record<string, string> = {};
    parts.forEach((p, i) => {
      writeFileSync(join(dir, names[i]), rawSafetensors(JSON.stringify(layout(p)), concat(p)));
      for (const t of p) weightMap[t.name] = names[i];
    });
    const index = editIndex(weightMap);
    writeFileSync(join(dir, 'model.safetensors.index.json'), typeof index === 'string' ? index : JSON.stringify(index));
  };

  const cases: MalformedCase[] = [
    // --- the file's structure
    { name: 'empty file', build: file(() => ({ raw: Buffer.alloc(0) })), expect: re('model.safetensors', 'too short') },
    { name: 'five bytes', build: file(() => ({ raw: Buffer.alloc(5) })), expect: re('model.safetensors', 'too short') },
    {
      name: 'truncated in the data',
      build: file(() => ({ raw: goodFile().subarray(0, goodFile().length - 10) })),
      expect: re('model.safetensors', `"${last}"`, 'truncated'),
    },
    {
      name: 'truncated in the header',
      build: file(() => ({ raw: goodFile().subarray(0, 40) })),
      expect: re('model.safetensors', 'header length'),
    },
    {
      name: 'header length past the end',
      build: file((ts, h) => ({ raw: rawSafetensors(JSON.stringify(h), concat(ts), 10n ** 7n) })),
      expect: re('model.safetensors', 'header length 10000000'),
    },
    {
      name: 'header length 2^63',
      build: file((ts, h) => ({ raw: rawSafetensors(JSON.stringify(h), concat(ts), 1n << 63n) })),
      expect: re('model.safetensors', 'header length'),
    },
    { name: 'header not JSON', build: file(() => ({ header: '{"a": [1, 2' })), expect: re('model.safetensors', 'not valid UTF-8 JSON') },
    {
      name: 'header not UTF-8',
      build: file((ts, h) => ({
        raw: Buffer.concat([
          rawSafetensors(JSON.stringify(h), concat(ts)).subarray(0, 9),
          Buffer.from([0xff]),
          rawSafetensors(JSON.stringify(h), concat(ts)).subarray(10),
        ]),
      })),
      expect: re('model.safetensors', 'not valid UTF-8 JSON'),
    },
    {
      name: 'header a JSON array',
      build: file(() => ({ header: '[1, 2, 3]', data: new Uint8Array() })),
      expect: re('model.safetensors', 'not a JSON object'),
    },
    {
      name: 'unknown dtype',
      build: file((_, h) => {
        h[first].dtype = 'F33';
      }),
      expect: re('model.safetensors', `"${first}"`, 'unknown dtype "F33"'),
    },
    {
      name: 'missing dtype',
      build: file((_, h) => {
        delete (h[first] as Partial<Header[string]>).dtype;
      }),
      expect: re('model.safetensors', `"${first}"`, 'dtype'),
    },
    {
      name: 'negative shape',
      build: file((_, h) => {
        h[first].shape = [-64, -16];
      }),
      expect: re('model.safetensors', `"${first}"`, 'shape'),
    },
    {
      name: 'fractional shape',
      build: file((_, h) => {
        h[first].shape = [64.5, 16];
      }),
      expect: re('model.safetensors', `"${first}"`, 'shape'),
    },
    {
      name: 'data_offsets reversed',
      build: file((_, h) => {
        h[first].data_offsets = [h[first].data_offsets[1], h[first].data_offsets[0]];
      }),
      expect: re('model.safetensors', `"${first}"`, 'data_offsets'),
    },
    {
      name: 'data_offsets of three numbers',
      build: file((_, h) => {
        (h[first] as { data_offsets: number[] }).data_offsets = [0, 4, 8];
      }),
      expect: re('model.safetensors', `"${first}"`, 'data_offsets'),
    },
    {
      name: 'shape and size disagree',
      build: file((_, h) => {
        h[last].shape = [h[last].shape[0] * 2];
      }),
      expect: re('model.safetensors', `"${last}"`, 'needs'),
    },
    {
      name: 'two tensors overlap',
      build: file((ts, h) => {
        // the second tensor starts 4 bytes early; the file shrinks by as much, so all else fits
        for (const t of ts.slice(1)) h[t.name].data_offsets = [h[t.name].data_offsets[0] - 4, h[t.name].data_offsets[1] - 4];
        return { data: concat(ts).subarray(4) };
      }),
      expect: re('model.safetensors', `"${tensors[1].name}"`, 'overlaps', `"${first}"`),
    },
    {
      name: 'gap between tensors',
      build: file((ts, h) => {
        for (const t of ts.slice(1)) h[t.name].data_offsets = [h[t.name].data_offsets[0] + 8, h[t.name].data_offsets[1] + 8];
        const data = concat(ts);
        const gapped = Buffer.concat([Buffer.from(ts[0].bytes), Buffer.alloc(8), data.subarray(ts[0].bytes.length)]);
        return { data: gapped };
      }),
      expect: re('model.safetensors', `"${tensors[1].name}"`, 'gap of 8 bytes', `"${first}"`),
    },
    {
      name: 'gap before the first tensor',
      build: file((ts, h) => {
        for (const t of ts) h[t.name].data_offsets = [h[t.name].data_offsets[0] + 16, h[t.name].data_offsets[1] + 16];
        return { data: Buffer.concat([Buffer.alloc(16), concat(ts)]) };
      }),
      expect: re('model.safetensors', `"${first}"`, 'gap of 16 bytes', 'start of the data'),
    },
    {
      name: 'trailing bytes',
      build: file((ts) => ({ data: Buffer.concat([concat(ts), Buffer.alloc(12)]) })),
      expect: re('model.safetensors', '12 trailing bytes', `"${last}"`),
    },
    {
      name: '__metadata__ with a number',
      build: file((_, h) => ({ header: JSON.stringify({ __metadata__: { format: 1 }, ...h }) })),
      expect: re('model.safetensors', '__metadata__.format'),
    },
    // --- the tensors against the config
    {
      name: 'missing tensor',
      build: file((ts, h) => {
        const i = ts.findIndex((t) => t.name === 'backbone.layers.1.mixer.D');
        ts.splice(i, 1);
        const fresh = layout(ts);
        for (const k of Object.keys(h)) delete h[k];
        Object.assign(h, fresh);
      }),
      expect: re('does not match the config', 'missing "backbone.layers.1.mixer.D"'),
    },
    {
      name: 'extra tensor',
      build: file((ts, h) => {
        ts.push({ name: 'backbone.layers.0.mixer.bonus', dtype: 'F32', shape: [2], bytes: new Uint8Array(8) });
        Object.assign(h, layout(ts));
      }),
      expect: re('does not match the config', 'unexpected "backbone.layers.0.mixer.bonus"'),
    },
    {
      name: 'wrong shape for A_log',
      build: file((_, h) => {
        h['backbone.layers.0.mixer.A_log'].shape = [16, 32];
      }),
      expect: re('"backbone.layers.0.mixer.A_log" has shape [16,32], expected [32,16]'),
    },
    {
      name: 'integer weight',
      build: file((_, h) => {
        h['backbone.norm_f.weight'].dtype = 'I32';
      }),
      expect: re('"backbone.norm_f.weight" has dtype I32'),
    },
    {
      name: 'NaN weight',
      build: file((ts) => {
        const i = ts.findIndex((t) => t.name === 'backbone.layers.0.mixer.A_log');
        ts[i] = withValue(ts[i], 37, Number.NaN);
      }),
      expect: re('"backbone.layers.0.mixer.A_log"', 'NaN', 'index 37'),
    },
    {
      name: '+Inf weight',
      build: file((ts) => {
        const i = ts.findIndex((t) => t.name === 'backbone.embeddings.weight');
        ts[i] = withValue(ts[i], 0, Number.POSITIVE_INFINITY);
      }),
      expect: re('"backbone.embeddings.weight"', 'Infinity', 'index 0'),
    },
    {
      name: '-Inf weight in the last layer',
      build: file((ts) => {
        const i = ts.findIndex((t) => t.name === 'backbone.layers.1.mixer.out_proj.weight');
        ts[i] = withValue(ts[i], 511, Number.NEGATIVE_INFINITY);
      }),
      expect: re('"backbone.layers.1.mixer.out_proj.weight"', '-Infinity', 'index 511'),
    },
    // --- sharded checkpoints
    {
      name: 'index names a missing shard',
      build: sharded((wm) => ({ weight_map: { ...wm, 'backbone.norm_f.weight': 'model-00003-of-00002.safetensors' } })),
      expect: re('model.safetensors.index.json', 'shard "model-00003-of-00002.safetensors" does not exist'),
    },
    { name: 'index not JSON', build: sharded(() => '{"weight_map": '), expect: re('model.safetensors.index.json', 'not valid JSON') },
    {
      name: 'index without weight_map',
      build: sharded(() => ({ metadata: {} })),
      expect: re('model.safetensors.index.json', 'weight_map'),
    },
    {
      name: 'index shard outside the folder',
      build: sharded((wm) => ({ weight_map: { ...wm, 'backbone.norm_f.weight': '../config.json' } })),
      expect: re('model.safetensors.index.json', 'weight_map["backbone.norm_f.weight"]'),
    },
    {
      name: 'index puts a tensor in the wrong shard',
      build: sharded((wm) => ({ weight_map: { ...wm, [first]: wm[last] } })),
      expect: re('model.safetensors.index.json', `"${first}"`, 'no such tensor'),
    },
    {
      name: 'neither weights file nor index',
      build: (dir) => writeConfig(dir, config),
      expect: re('has no model.safetensors or model.safetensors.index.json'),
    },
    // --- config.json
    { name: 'no config.json', build: (dir) => writeFileSync(st(dir), goodFile()), expect: re('config.json') },
    {
      name: 'config.json not JSON',
      build: (dir) => {
        writeFileSync(join(dir, 'config.json'), '{"hidden_size": 16,');
        writeFileSync(st(dir), goodFile());
      },
      expect: re('config', 'config.json', 'not valid JSON'),
    },
    { name: 'config.json an array', build: cfg(() => [1, 2]), expect: re('config.json', 'not a JSON object') },
    {
      name: 'config without hidden_size',
      build: cfg((c) => {
        delete c.hidden_size;
        return c;
      }),
      expect: re('config.json', 'missing required field "hidden_size"'),
    },
    field('num_hidden_layers', 1e9, re('config.json', 'field "num_hidden_layers" is 1000000000', 'bytes')),
    field('hidden_size', -32, re('config.json', 'field "hidden_size" must be a positive integer')),
    field('hidden_size', 1.5, re('config.json', 'field "hidden_size" must be a positive integer')),
    field('vocab_size', 0, re('config.json', 'field "vocab_size" must be a positive integer')),
    field('intermediate_size', 1e7, re('config.json', 'field "intermediate_size" is 10000000', 'bytes')),
    field('state_size', '16', re('config.json', 'field "state_size" must be a positive integer')),
    field('conv_kernel', 0, re('config.json', 'field "conv_kernel" must be a positive integer')),
    field('time_step_rank', -1, re('config.json', 'field "time_step_rank"')),
    field('hidden_act', 'gelu', re('config.json', 'field "hidden_act" is "gelu"', 'SiLU')),
    field('layer_norm_epsilon', -1, re('config.json', 'field "layer_norm_epsilon" must be > 0')),
    field('layer_norm_epsilon', 0, re('config.json', 'field "layer_norm_epsilon" must be > 0')),
    {
      // JSON has no Infinity, but 1e999 parses to it
      name: 'config layer_norm_epsilon = 1e999',
      build: (dir) => {
        writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, layer_norm_epsilon: 12345 }).replace('12345', '1e999'));
        writeFileSync(st(dir), goodFile());
      },
      expect: re('config.json', 'field "layer_norm_epsilon" must be a finite number, found Infinity'),
    },
    field('time_step_min', 0.5, re('config.json', 'field "time_step_min" (0.5) is above "time_step_max"')),
    field('use_bias', true, re('does not match the config', 'missing "backbone.layers.0.mixer.in_proj.bias"')),
    {
      name: 'config within bounds but over the memory budget',
      build: cfg((c) => ({ ...c, num_hidden_layers: 4000, hidden_size: 60000, intermediate_size: 120000, time_step_rank: 'auto' })),
      expect: re('num_hidden_layers 4000', 'over the budget'),
    },
    {
      name: 'a mamba_ssm config',
      build: cfg(() => ({ d_model: 16, n_layer: 2, vocab_size: 64 })),
      expect: re('config.json', 'mamba_ssm config'),
    },
  ];
  return cases;
}

/** Builds `c` in a new folder `root/<index>` and returns the folder. */
export function buildCase(root: string, index: number, c: MalformedCase): string {
  const dir = join(root, String(index).padStart(2, '0'));
  mkdirSync(dir, { recursive: true });
  c.build(dir);
  return dir;
}
