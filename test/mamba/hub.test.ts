// Checkpoints by name through the Hugging Face hub cache (mamba/hub.ts): a cache laid out as
// huggingface_hub writes it (blobs, snapshot files that are symlinks into them, refs/main), the
// environment variables in huggingface_hub's order, and the one-line errors for a name not in
// the cache and for a checkpoint that ships a pickle only.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { copyFileSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join, resolve } from 'node:path';
import { spawnSync } from 'node:child_process';
import * as mi from '../../engine/index.ts';
import { hubCacheDir, isRepoId, resolveCheckpoint } from '../../mamba/hub.ts';
import { loadPretrained } from '../../mamba/pretrained.ts';
import { withTempDir } from '../helpers/temp-dir.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const TINY = resolve(ROOT, '../shared/fixtures/hf-mamba/tiny/model');
const COMMIT = `${'a'.repeat(39)}b`;

/** Lays `files` (name -> source path) out as the hub does: content-addressed blobs, snapshot symlinks, refs/main. */
function hubLayout(cache: string, repoId: string, files: Record<string, string>, commit = COMMIT, ref = 'main'): string {
  const repo = join(cache, `models--${repoId.replace('/', '--')}`);
  const snap = join(repo, 'snapshots', commit);
  mkdirSync(join(repo, 'blobs'), { recursive: true });
  mkdirSync(snap, { recursive: true });
  mkdirSync(join(repo, 'refs'), { recursive: true });
  for (const [name, src] of Object.entries(files)) {
    const blob = createHash('sha256').update(`${repoId}/${name}`).digest('hex');
    copyFileSync(src, join(repo, 'blobs', blob));
    symlinkSync(join('..', '..', 'blobs', blob), join(snap, name));
  }
  writeFileSync(join(repo, 'refs', ref), `${commit}\n`);
  return snap;
}

test('hubCacheDir follows huggingface_hub: HF_HUB_CACHE, then HF_HOME/hub, then ~/.cache/huggingface/hub', () => {
  assert.is(hubCacheDir({ HF_HUB_CACHE: '/x/cache', HF_HOME: '/y', HOME: '/h' }), '/x/cache');
  assert.is(hubCacheDir({ HF_HOME: '/y', HOME: '/h' }), '/y/hub');
  assert.is(hubCacheDir({ HOME: '/h' }), '/h/.cache/huggingface/hub');
});

test('isRepoId: hub ids, not paths or URLs', () => {
  for (const s of ['state-spaces/mamba-130m-hf', 'gpt2', 'org/name.v2']) assert.ok(isRepoId(s), s);
  for (const s of ['./model', '../x/y', '/abs/path', 'a/b/c', 'https://host/m', '']) assert.not.ok(isRepoId(s), s);
});

test(
  'a name resolves through refs/main to its snapshot (files behind symlinks) and loads the same model as its folder',
  withTempDir('mi-hub-', async (tmp) => {
    const files = Object.fromEntries(readdirSync(TINY).map((f) => [f, join(TINY, f)]));
    const snap = hubLayout(join(tmp, 'hub'), 'test-org/tiny-mamba', files);
    const env = { HF_HUB_CACHE: join(tmp, 'hub') };
    const r = resolveCheckpoint('test-org/tiny-mamba', { env });
    assert.equal(r, { dir: snap, via: 'hub cache', repoId: 'test-org/tiny-mamba', commit: COMMIT });
    // a commit sha as the revision goes straight to its snapshot; an unknown branch is not found
    assert.is(resolveCheckpoint('test-org/tiny-mamba', { env, revision: COMMIT }).dir, snap);
    assert.throws(() => resolveCheckpoint('test-org/tiny-mamba', { env, revision: 'dev' }), /refs\/dev/);
    // HF_HOME/hub when HF_HUB_CACHE is unset
    assert.is(resolveCheckpoint('test-org/tiny-mamba', { env: { HF_HOME: tmp } }).dir, snap);

    const backend = mi.cpuBackend();
    const saved = process.env.HF_HUB_CACHE;
    process.env.HF_HUB_CACHE = env.HF_HUB_CACHE;
    const byName = await loadPretrained('test-org/tiny-mamba', { backend });
    if (saved === undefined) delete process.env.HF_HUB_CACHE;
    else process.env.HF_HUB_CACHE = saved;
    const byDir = await loadPretrained(TINY, { backend });
    try {
      assert.equal([...byName.params.keys()], [...byDir.params.keys()]);
      for (const [name, t] of byDir.params) assert.equal(await byName.params.get(name)!.data(), await t.data(), name);
    } finally {
      byName.dispose();
      byDir.dispose();
    }
  }),
);

test(
  'a name not in the cache: one error naming the paths looked at and the download command',
  withTempDir('mi-hub-', (tmp) => {
    const env = { HF_HUB_CACHE: join(tmp, 'hub') };
    try {
      resolveCheckpoint('state-spaces/mamba-130m-hf', { env });
      assert.unreachable('resolved a name that is not in the cache');
    } catch (e) {
      const msg = (e as Error).message;
      assert.not.ok(msg.includes('\n'), 'one line');
      assert.ok(msg.includes(join(tmp, 'hub', 'models--state-spaces--mamba-130m-hf', 'refs', 'main')), msg);
      assert.ok(msg.includes('hf download state-spaces/mamba-130m-hf'), msg);
    }
  }),
);

test(
  'a checkpoint that ships pytorch_model.bin only is refused by name (no pickle is read), with the -hf variant named',
  withTempDir('mi-hub-', (tmp) => {
    writeFileSync(join(tmp, 'config.json'), '{"d_model": 768}');
    writeFileSync(join(tmp, 'pytorch_model.bin'), 'PK not really a pickle');
    hubLayout(join(tmp, 'hub'), 'state-spaces/mamba-130m', {
      'config.json': join(tmp, 'config.json'),
      'pytorch_model.bin': join(tmp, 'pytorch_model.bin'),
    });
    assert.throws(
      () => resolveCheckpoint('state-spaces/mamba-130m', { env: { HF_HUB_CACHE: join(tmp, 'hub') } }),
      (e: Error) => /pytorch_model\.bin only, which is unsupported/.test(e.message) && e.message.includes('state-spaces/mamba-130m-hf'),
    );
  }),
);

test(
  'steps/run.ts --model NAME resolves through the cache, and a missing name exits non-zero with that one line',
  withTempDir('mi-hub-', (tmp) => {
    const run = (model: string) =>
      spawnSync(
        process.execPath,
        ['--import', 'tsx', join(ROOT, 'steps/run.ts'), '--step', '0', '--model', model, '--out', join(tmp, 'run')],
        {
          cwd: ROOT,
          env: { ...process.env, HF_HUB_CACHE: join(tmp, 'hub'), MI_BACKEND: 'cpu' },
          encoding: 'utf-8',
        },
      );
    const missing = run('test-org/absent');
    assert.is.not(missing.status, 0);
    assert.match(missing.stderr, /--model test-org\/absent: checkpoint test-org\/absent: not found/);
    const files = Object.fromEntries(readdirSync(TINY).map((f) => [f, join(TINY, f)]));
    const snap = hubLayout(join(tmp, 'hub'), 'test-org/tiny-mamba', files);
    const ok = run('test-org/tiny-mamba');
    assert.is(ok.status, 0, ok.stderr);
    assert.ok(ok.stdout.includes(`run ${join(tmp, 'run')}`), ok.stdout);
    assert.match(readConfigModel(join(tmp, 'run')), new RegExp(`^${snap}$`));
  }),
);

function readConfigModel(runDir: string): string {
  return (JSON.parse(readFileSync(join(runDir, 'config.json'), 'utf-8')) as { model: string }).model;
}

test.run();
