// The browser checkpoint path in Node: fetchPretrained over a fetch that serves the fixture folder
// builds the same model as loadPretrained (bit-identical logits), SafetensorsBuffer reads what
// SafetensorsFile reads, a sharded folder (model.safetensors.index.json) is fetched shard by shard,
// and a missing file or a broken header is an error naming the URL.
import { copyFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as mi from '../../engine/index.ts';
import { fetchPretrained } from '../../mamba/fetch-checkpoint.ts';
import { loadPretrained } from '../../mamba/pretrained.ts';
import { openSafetensors, SafetensorsBuffer, writeShardedCheckpoint } from '../../mamba/safetensors.ts';
import { modelDir } from '../helpers/hf-fixture.ts';
import { withTempDir } from '../helpers/temp-dir.ts';

const dir = modelDir('tiny');
const BASE = 'http://127.0.0.1:1/tiny/';

/** A fetch that answers BASE + file from `folder`, 404 otherwise; `asked` records the URLs. */
const folderFetch = (folder: string, asked: string[] = []) =>
  (async (input: string | URL | Request) => {
    const url = String(input);
    asked.push(url);
    if (!url.startsWith(BASE)) return new Response('not found', { status: 404, statusText: 'Not Found' });
    try {
      return new Response(await readFile(join(folder, url.slice(BASE.length))));
    } catch {
      return new Response('not found', { status: 404, statusText: 'Not Found' });
    }
  }) as typeof fetch;
const fixtureFetch = folderFetch(dir);

test('fetchPretrained builds the model loadPretrained builds: same parameters, same logits', async () => {
  const fetched = await fetchPretrained(BASE.slice(0, -1), { fetch: fixtureFetch, backend: mi.cpuBackend() });
  const loaded = await loadPretrained(dir, { backend: mi.cpuBackend() });
  assert.equal([...fetched.params.keys()], [...loaded.params.keys()]);
  for (const [name, t] of loaded.params) assert.equal(fetched.p(name).dataSync(), t.dataSync(), name);
  const ids = [[1, 5, 9, 2, 63, 0, 7]];
  assert.equal(fetched.forward(ids).dataSync(), loaded.forward(ids).dataSync());
});

test(
  'a sharded folder is fetched through its index, shard by shard, and gives the same model',
  withTempDir('mi-fetch-', async (tmp) => {
    const file = await openSafetensors(join(dir, 'model.safetensors'));
    let shards: string[];
    try {
      const tensors = await Promise.all(
        file.names.map(async (name) => {
          const r = await file.read(name);
          return { name, dtype: 'F32' as const, shape: r.shape, data: r.data };
        }),
      );
      shards = await writeShardedCheckpoint(tmp, tensors, { maxShardBytes: 4096 });
    } finally {
      await file.close();
    }
    await copyFile(join(dir, 'config.json'), join(tmp, 'config.json'));
    assert.ok(shards.length >= 3, `${shards.length} shards`);
    const asked: string[] = [];
    const fetched = await fetchPretrained(BASE, { fetch: folderFetch(tmp, asked), backend: mi.cpuBackend() });
    const loaded = await loadPretrained(dir, { backend: mi.cpuBackend() });
    try {
      for (const s of shards) assert.ok(asked.includes(`${BASE}${s}`), `fetched ${s}`);
      for (const [name, t] of loaded.params) assert.equal(fetched.p(name).dataSync(), t.dataSync(), name);
    } finally {
      fetched.dispose();
      loaded.dispose();
    }
    // a shard the index names but the server does not have: an error naming both
    const { unlink } = await import('node:fs/promises');
    await unlink(join(tmp, shards[1]));
    await fetchPretrained(BASE, { fetch: folderFetch(tmp), backend: mi.cpuBackend() }).then(
      () => assert.unreachable('loaded without a shard'),
      (e: Error) => assert.match(e.message, `names shard ${shards[1]}, but ${BASE}${shards[1]} answered 404`),
    );
  }),
);

test('SafetensorsBuffer reads every tensor as SafetensorsFile does', async () => {
  const path = join(dir, 'model.safetensors');
  const bytes = await readFile(path);
  const buf = new SafetensorsBuffer(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength), 'tiny');
  const file = await openSafetensors(path);
  try {
    assert.equal(buf.names, file.names);
    for (const name of file.names) {
      const [a, b] = [await buf.read(name), await file.read(name)];
      assert.equal(a.shape, b.shape, name);
      assert.equal(a.data, b.data, name);
    }
  } finally {
    await file.close();
  }
});

test('a missing model.safetensors and a broken header are errors naming the URL', async () => {
  const noWeights = (async (u: string | URL | Request) =>
    String(u).endsWith('model.safetensors') ? new Response('', { status: 404, statusText: 'Not Found' }) : fixtureFetch(u)) as typeof fetch;
  await fetchPretrained(BASE, { fetch: noWeights }).then(
    () => assert.unreachable('loaded'),
    (e: Error) => assert.match(e.message, `${BASE}model.safetensors answered 404`),
  );
  const header = new Uint8Array(16);
  new DataView(header.buffer).setBigUint64(0, 1000n, true);
  assert.throws(() => new SafetensorsBuffer(header.buffer, 'broken.safetensors'), /broken\.safetensors: header length 1000 is not sane/);
});

test.run();
