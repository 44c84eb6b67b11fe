import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { readConfig, validateCheckpoint } from '../../mamba/config.ts';
import {
  INDEX_FILE,
  openCheckpoint,
  openSafetensors,
  writeSafetensors,
  writeShardedCheckpoint,
  type TensorToWrite,
} from '../../mamba/safetensors.ts';
import { withTempDir } from '../helpers/temp-dir.ts';

const fixtures = resolve(import.meta.dirname, '../../../shared/fixtures/hf-mamba');
const manifest = JSON.parse(readFileSync(join(fixtures, 'manifest.json'), 'utf-8'));
const DTYPE_OF: Record<string, string> = { float32: 'F32', float64: 'F64', int64: 'I64' };
const quiet = { warn: () => undefined };

const tempDir = (): string => mkdtempSync(join(tmpdir(), 'mamba-ckpt-'));
/** A test body in a fresh checkpoint directory, removed afterwards. */
const withDir = (body: (dir: string) => Promise<void> | void) => withTempDir('mamba-ckpt-', body);

/** Raw safetensors bytes from a header object and a data section, built by hand (not by our writer). */
function rawFile(header: unknown, data: Uint8Array, headerText = JSON.stringify(header)): Buffer {
  const h = Buffer.from(headerText);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  return Buffer.concat([len, h, data]);
}

async function rejects(p: Promise<unknown>, pattern: RegExp): Promise<void> {
  await p.then(
    () => assert.unreachable(`expected an error matching ${pattern}`),
    (e: Error) => {
      assert.instance(e, Error);
      assert.match(e.message, pattern);
    },
  );
}

test('golden.safetensors: names, dtypes and shapes match manifest.json', async () => {
  for (const name of ['tiny', 'small']) {
    const f = await openSafetensors(join(fixtures, name, 'golden.safetensors'));
    try {
      const tensors = manifest.cases[name].tensors as Record<string, [string, number[]]>;
      assert.equal([...f.names], Object.keys(tensors).sort(), `${name}: names`);
      for (const [t, [dtype, shape]] of Object.entries(tensors)) {
        assert.equal(f.entry(t), { dtype: DTYPE_OF[dtype], shape }, `${name}: ${t}`);
      }
      const ids = await f.read('input_ids');
      assert.instance(ids.data, Int32Array);
      assert.is(
        ids.data.length,
        tensors.input_ids[1].reduce((a, b) => a * b, 1),
      );
      assert.instance((await f.read('f64.logits')).data, Float64Array);
    } finally {
      await f.close();
    }
  }
});

test('model.safetensors values agree with golden.safetensors (embedding rows of input_ids)', async () => {
  const model = await openCheckpoint(join(fixtures, 'tiny/model'));
  const golden = await openSafetensors(join(fixtures, 'tiny/golden.safetensors'));
  try {
    for (const n of model.names) {
      assert.equal(model.entry(n).shape, manifest.cases.tiny.tensors[`f64.grad.${n}`][1], n);
    }
    const emb = await model.read('backbone.embeddings.weight');
    const ids = (await golden.read('input_ids')).data;
    const out = (await golden.read('f32.embed_out')).data;
    const d = emb.shape[1];
    assert.ok(ids.length > 0);
    for (let i = 0; i < ids.length; i++) {
      assert.equal(out.subarray(i * d, (i + 1) * d), emb.data.subarray(ids[i] * d, (ids[i] + 1) * d), `token ${i}`);
    }
    validateCheckpoint(await readConfig(join(fixtures, 'tiny/model'), quiet), model);
  } finally {
    await model.close();
    await golden.close();
  }
});

test('writing the fixture checkpoint back reproduces the file byte for byte', async () => {
  const src = join(fixtures, 'tiny/model/model.safetensors');
  const f = await openSafetensors(src);
  const dir = tempDir();
  try {
    const tensors: TensorToWrite[] = [];
    for (const n of f.names) {
      const t = await f.read(n);
      tensors.push({ name: n, dtype: 'F32', shape: t.shape, data: t.data });
    }
    const out = join(dir, 'model.safetensors');
    await writeSafetensors(out, tensors.reverse(), f.metadata);
    assert.ok(readFileSync(out).equals(readFileSync(src)), 'same bytes as transformers wrote');
  } finally {
    await f.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test(
  'write → read round trip is bit-identical (F32, F64, I64, I32) and F16/BF16 keep representable values',
  withDir(async (dir) => {
    const f32bits = new Uint32Array([0x7fc00001, 0x80000000, 0x00000001, 0x7f7fffff, 0xff800000, 0x3f800000, 0xbeaaaaab]);
    const f32 = new Float32Array(f32bits.buffer);
    const f64 = new Float64Array([Math.PI, -0, 5e-324, -1.7976931348623157e308, Infinity, 1 / 3]);
    const i64 = [0, -1, 2147483647, -2147483648, 123456, -7];
    const path = join(dir, 'r.safetensors');
    await writeSafetensors(
      path,
      [
        { name: 'z.f32', dtype: 'F32', shape: [7], data: f32 },
        { name: 'a.f64', dtype: 'F64', shape: [2, 3], data: f64 },
        { name: 'm.i64', dtype: 'I64', shape: [3, 2], data: i64 },
        { name: 'm.i32', dtype: 'I32', shape: [3, 1, 2], data: new Int32Array(i64) },
        { name: 'h.f16', dtype: 'F16', shape: [5], data: [1, -2, 65504, 2 ** -24, 0.333251953125] },
        { name: 'h.bf16', dtype: 'BF16', shape: [3], data: [1.5, -3.140625, 2 ** 100] },
        { name: 'empty', dtype: 'F32', shape: [0, 4], data: [] },
        { name: '7', dtype: 'F32', shape: [1], data: [5] },
      ],
      { format: 'pt', note: 'round trip' },
    );
    // The header is space-padded so tensor data starts 8-byte aligned; tensors are laid out in name order.
    const bytes = readFileSync(path);
    const headerLen = Number(bytes.readBigUInt64LE(0));
    assert.is(headerLen % 8, 0);
    const headerText = bytes.subarray(8, 8 + headerLen).toString();
    assert.ok(headerText.startsWith('{"__metadata__":{"format":"pt","note":"round trip"},"7":'), 'metadata first, then names in order');
    const header = JSON.parse(headerText);
    const byOffset = Object.keys(header)
      .filter((k) => k !== '__metadata__')
      .sort((a, b) => header[a].data_offsets[0] - header[b].data_offsets[0] || a.localeCompare(b));
    assert.equal(
      byOffset,
      Object.keys(header)
        .filter((k) => k !== '__metadata__')
        .sort(),
    );
    assert.equal(readdirSync(dir), ['r.safetensors'], 'no temporary file left behind');

    const f = await openSafetensors(path);
    try {
      assert.equal(f.metadata, { format: 'pt', note: 'round trip' });
      const r32 = await f.read('z.f32');
      assert.instance(r32.data, Float32Array);
      assert.equal([...new Uint32Array(r32.data.buffer, r32.data.byteOffset, 7)], [...f32bits]);
      const r64 = await f.read('a.f64');
      assert.equal(r64.shape, [2, 3]);
      assert.equal(new Uint8Array(r64.data.buffer, r64.data.byteOffset, 48), new Uint8Array(f64.buffer));
      assert.equal(await f.read('m.i64'), { dtype: 'I64', shape: [3, 2], data: new Int32Array(i64) });
      assert.equal(await f.read('m.i32'), { dtype: 'I32', shape: [3, 1, 2], data: new Int32Array(i64) });
      assert.equal([...(await f.read('h.f16')).data], [1, -2, 65504, 2 ** -24, 0.333251953125]);
      assert.equal([...(await f.read('h.bf16')).data], [1.5, -3.140625, 2 ** 100]);
      assert.equal((await f.read('empty')).shape, [0, 4]);
      assert.equal((await f.read('7')).data, new Float32Array([5]));
    } finally {
      await f.close();
    }
  }),
);

test(
  'reader decodes hand-built F16, BF16, I16, I8, U8, BOOL tensors',
  withDir(async (dir) => {
    const f16 = new Uint16Array([0x3c00, 0xc000, 0x7bff, 0x0001, 0x7c00, 0x3555, 0x8000]);
    const bf16 = new Uint16Array([0x3f80, 0xc049, 0x0000]);
    const i16 = new Int16Array([-32768, 32767, -1]);
    const parts = [
      new Uint8Array(f16.buffer),
      new Uint8Array(bf16.buffer),
      new Uint8Array(i16.buffer),
      new Uint8Array([0xff, 0x7f, 0x80]),
      new Uint8Array([0, 255, 7]),
      new Uint8Array([0, 1, 1]),
    ];
    const names = ['f16', 'bf16', 'i16', 'i8', 'u8', 'bool'];
    const dtypes = ['F16', 'BF16', 'I16', 'I8', 'U8', 'BOOL'];
    const header: Record<string, unknown> = {};
    let at = 0;
    parts.forEach((p, i) => {
      header[names[i]] = { dtype: dtypes[i], shape: [p.length / (dtypes[i].includes('16') ? 2 : 1)], data_offsets: [at, at + p.length] };
      at += p.length;
    });
    const path = join(dir, 'hand.safetensors');
    writeFileSync(path, rawFile(header, Buffer.concat(parts)));
    const f = await openSafetensors(path);
    try {
      assert.equal([...(await f.read('f16')).data], [1, -2, 65504, 2 ** -24, Infinity, 0.333251953125, -0]);
      assert.equal([...(await f.read('bf16')).data], [1, -3.140625, 0]);
      assert.equal((await f.read('i16')).data, new Int32Array([-32768, 32767, -1]));
      assert.equal((await f.read('i8')).data, new Int32Array([-1, 127, -128]));
      assert.equal((await f.read('u8')).data, new Int32Array([0, 255, 7]));
      assert.equal((await f.read('bool')).data, new Int32Array([0, 1, 1]));
    } finally {
      await f.close();
    }
  }),
);

test(
  'sharded checkpoint: write, read across shards through index.json, missing shard error',
  withDir(async (dir) => {
    const tensors: TensorToWrite[] = [
      { name: 'a', dtype: 'F32', shape: [4], data: new Float32Array([1, 2, 3, 4.5]) },
      { name: 'b', dtype: 'F64', shape: [2], data: [0.1, -0.2] },
      { name: 'c', dtype: 'I64', shape: [3], data: [7, 8, -9] },
    ];
    const shards = await writeShardedCheckpoint(dir, tensors, { maxShardBytes: 16 });
    assert.equal(shards, ['model-00001-of-00003.safetensors', 'model-00002-of-00003.safetensors', 'model-00003-of-00003.safetensors']);
    const index = JSON.parse(readFileSync(join(dir, INDEX_FILE), 'utf-8'));
    assert.is(index.metadata.total_size, 16 + 16 + 24);
    assert.is(index.weight_map.c, shards[2]);
    const ckpt = await openCheckpoint(dir);
    try {
      assert.equal([...ckpt.names], ['a', 'b', 'c']);
      assert.is(ckpt.shards.size, 3);
      assert.equal((await ckpt.read('a')).data, new Float32Array([1, 2, 3, 4.5]));
      assert.equal((await ckpt.read('b')).data, new Float64Array([0.1, -0.2]));
      assert.equal((await ckpt.read('c')).data, new Int32Array([7, 8, -9]));
      assert.equal(ckpt.entry('c'), { dtype: 'I64', shape: [3] });
      assert.throws(() => ckpt.entry('nope'), /checkpoint .*no tensor named "nope"/);
    } finally {
      await ckpt.close();
    }
    unlinkSync(join(dir, shards[1]));
    await rejects(openCheckpoint(dir), new RegExp(`${INDEX_FILE.replace(/\./g, '\\.')}: shard "${shards[1]}" does not exist`));
    writeFileSync(join(dir, INDEX_FILE), JSON.stringify({ weight_map: { a: '../x.safetensors' } }));
    await rejects(openCheckpoint(dir), /weight_map\["a"\] must be a shard file name/);
    writeFileSync(join(dir, INDEX_FILE), JSON.stringify({ weight_map: { b: shards[0] } }));
    await rejects(openCheckpoint(dir), /puts "b" in shard "model-00001-of-00003\.safetensors", which has no such tensor/);
    rmSync(join(dir, INDEX_FILE));
    await rejects(openCheckpoint(dir), /neither model\.safetensors nor model\.safetensors\.index\.json/);
  }),
);

/** Copies the tiny fixture's tensors, letting `edit` change the list, into dir/model.safetensors. */
async function brokenCopy(dir: string, edit: (ts: TensorToWrite[]) => TensorToWrite[]): Promise<string> {
  const f = await openSafetensors(join(fixtures, 'tiny/model/model.safetensors'));
  const ts: TensorToWrite[] = [];
  for (const n of f.names) {
    const t = await f.read(n);
    ts.push({ name: n, dtype: 'F32', shape: t.shape, data: t.data });
  }
  await f.close();
  const path = join(dir, 'model.safetensors');
  await writeSafetensors(path, edit(ts));
  return path;
}

test(
  'validateCheckpoint lists missing, extra, mis-shaped and wrongly typed tensors by name',
  withDir(async (dir) => {
    const config = await readConfig(join(fixtures, 'tiny/model'), quiet);
    await brokenCopy(dir, (ts) => {
      const out = ts.filter((t) => t.name !== 'backbone.layers.1.mixer.D');
      const a = out.find((t) => t.name === 'backbone.layers.0.mixer.A_log')!;
      a.shape = [16, 32];
      const dt = out.find((t) => t.name === 'backbone.layers.0.mixer.dt_proj.bias')!;
      dt.dtype = 'I64';
      dt.data = new Array(dt.data.length).fill(0);
      out.push({ name: 'backbone.layers.0.mixer.extra', dtype: 'F32', shape: [2], data: [1, 2] });
      return out;
    });
    const ckpt = await openCheckpoint(dir);
    try {
      assert.throws(
        () => validateCheckpoint(config, ckpt),
        (e: Error) => {
          assert.match(e.message, /checkpoint .*mamba-ckpt-.* does not match the config \(4 problem\(s\)\)/);
          assert.match(e.message, /missing "backbone\.layers\.1\.mixer\.D" \(expected shape \[32\]\)/);
          assert.match(e.message, /"backbone\.layers\.0\.mixer\.A_log" has shape \[16,32\], expected \[32,16\]/);
          assert.match(e.message, /"backbone\.layers\.0\.mixer\.dt_proj\.bias" has dtype I64, expected a float/);
          assert.match(e.message, /unexpected "backbone\.layers\.0\.mixer\.extra" \(shape \[2\]\)/);
          return true;
        },
      );
    } finally {
      await ckpt.close();
    }
    // A tied model may carry a redundant lm_head.weight of the embedding's shape.
    await brokenCopy(dir, (ts) => [...ts, { name: 'lm_head.weight', dtype: 'F32', shape: [64, 16], data: new Float32Array(64 * 16) }]);
    const tied = await openCheckpoint(dir);
    validateCheckpoint(config, tied);
    await tied.close();
  }),
);

test(
  'truncated file: error names the file and the tensor',
  withDir(async (dir) => {
    const path = await brokenCopy(dir, (ts) => ts);
    const size = readFileSync(path).length;
    truncateSync(path, size - 10);
    // The last tensor in the data section is the last in name order.
    await rejects(openSafetensors(path), /safetensors .*model\.safetensors: tensor "backbone\.norm_f\.weight": .*truncated/);
    truncateSync(path, 5);
    await rejects(openSafetensors(path), /model\.safetensors: file is 5 bytes/);
  }),
);

test(
  'bad headers are errors naming the file and the field',
  withDir(async (dir) => {
    const path = join(dir, 'bad.safetensors');
    const data = new Uint8Array(16);
    const cases: [Buffer, RegExp][] = [
      [
        Buffer.concat([Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0]), Buffer.alloc(16)]),
        /bad\.safetensors: header length \d+ is not sane/,
      ],
      [rawFile(null, data, '{"a": {"dtype": "F32"'), /bad\.safetensors: header is not valid UTF-8 JSON/],
      [rawFile(null, data, '[1, 2]'), /bad\.safetensors: header is not a JSON object/],
      [rawFile({ a: { dtype: 'F32', shape: [4] } }, data), /tensor "a": "data_offsets" must be \[begin, end\]/],
      [rawFile({ a: { shape: [4], data_offsets: [0, 16] } }, data), /tensor "a": missing or non-string "dtype"/],
      [
        rawFile({ a: { dtype: 'F32', shape: [-4], data_offsets: [0, 16] } }, data),
        /tensor "a": "shape" must be an array of non-negative integers/,
      ],
      [
        rawFile({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 16] } }, data),
        /tensor "a": data_offsets \[0, 16\] hold 16 bytes but F32\[3\] needs 12/,
      ],
      [
        rawFile({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, data),
        /tensor "b" overlaps tensor "a"/,
      ],
      [
        rawFile({ a: { dtype: 'F32', shape: [8], data_offsets: [0, 32] } }, data),
        /tensor "a": data_offsets end 32 is past the end .*truncated/,
      ],
      [rawFile({ a: { dtype: 'Q4', shape: [4], data_offsets: [0, 16] } }, data), /tensor "a": unknown dtype "Q4"/],
      [
        rawFile({ __metadata__: { n: 1 }, a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, data),
        /"__metadata__\.n" must be a string/,
      ],
    ];
    for (const [bytes, pattern] of cases) {
      writeFileSync(path, bytes);
      await rejects(openSafetensors(path), pattern);
    }
  }),
);

test(
  'read errors: unconvertible dtype, I64 outside int32, unknown name',
  withDir(async (dir) => {
    const path = join(dir, 'x.safetensors');
    const big = new BigInt64Array([1n, 2n ** 31n]);
    const u32 = new Uint32Array([1, 2]);
    writeFileSync(
      path,
      rawFile(
        {
          big: { dtype: 'I64', shape: [2], data_offsets: [0, 16] },
          u: { dtype: 'U32', shape: [2], data_offsets: [16, 24] },
        },
        Buffer.concat([new Uint8Array(big.buffer), new Uint8Array(u32.buffer)]),
      ),
    );
    const f = await openSafetensors(path);
    try {
      await rejects(f.read('big'), /x\.safetensors: tensor "big": I64 value 2147483648 at index 1 does not fit in int32/);
      await rejects(f.read('u'), /tensor "u": cannot convert dtype "U32"/);
      await rejects(f.read('missing'), /x\.safetensors: no tensor named "missing"/);
    } finally {
      await f.close();
    }
  }),
);

test(
  'writer rejects bad input without leaving a file behind',
  withDir(async (dir) => {
    const path = join(dir, 'w.safetensors');
    await rejects(
      writeSafetensors(path, [{ name: 'a', dtype: 'F32', shape: [3], data: [1, 2] }]),
      /tensor "a": shape \[3\] needs 3 values, data has 2/,
    );
    await rejects(
      writeSafetensors(path, [{ name: 'a', dtype: 'I64', shape: [1], data: [1.5] }]),
      /tensor "a": value 1.5 at index 0 is not a representable integer/,
    );
    await rejects(
      writeSafetensors(path, [
        { name: 'a', dtype: 'F32', shape: [1], data: [1] },
        { name: 'a', dtype: 'F32', shape: [1], data: [1] },
      ]),
      /tensor "a": duplicate name/,
    );
    assert.equal(readdirSync(dir), []);
    await rejects(writeSafetensors(join(dir, 'no/such/dir/w.safetensors'), []), /ENOENT/);
    assert.not.ok(existsSync(join(dir, 'no')));
  }),
);

test.run();
