// Checkpoints by name, offline: "state-spaces/mamba-130m-hf" resolved through the Hugging Face hub
// cache as huggingface_hub lays it out, so a model a user already downloaded (with `hf download`,
// transformers or the hub library) loads without copying it anywhere:
//
//   $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub
//     models--ORG--NAME/refs/main            the commit the revision points at (a 40-hex sha)
//     models--ORG--NAME/snapshots/SHA/...    the files, usually symlinks into ../../blobs/
//
// Nothing is downloaded: a name that is not in the cache is an error naming every path looked at
// and the command that would fetch it. Checkpoints that ship only pytorch_model.bin are refused by
// name (a pickle can run code when read, and this project never reads one).
import { existsSync, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

/** What a checkpoint folder must hold for this project to read it. */
const WEIGHTS = ['model.safetensors', 'model.safetensors.index.json'];
const PICKLES = ['pytorch_model.bin', 'pytorch_model.bin.index.json'];
const SHA = /^[0-9a-f]{40}$/;
/** "org/name" or "name", as the hub spells repository ids */
const REPO_ID = /^(?:[A-Za-z0-9][A-Za-z0-9._-]*\/)?[A-Za-z0-9][A-Za-z0-9._-]*$/;

export type Env = Readonly<Record<string, string | undefined>>;

/** The hub cache folder huggingface_hub uses under `env` (HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub). */
export function hubCacheDir(env: Env = process.env): string {
  if (env.HF_HUB_CACHE) return resolve(env.HF_HUB_CACHE);
  if (env.HF_HOME) return resolve(env.HF_HOME, 'hub');
  return join(env.HOME || homedir(), '.cache', 'huggingface', 'hub');
}

/** Whether `s` reads as a hub repository id ("org/name") rather than a path or a URL. */
export function isRepoId(s: string): boolean {
  return REPO_ID.test(s) && !s.startsWith('.') && !s.includes('..');
}

/** Whether `s` is an http(s) URL (a checkpoint folder served over HTTP: mamba/fetch-checkpoint.ts). */
export function isUrl(s: string): boolean {
  return /^https?:\/\//i.test(s);
}

export interface ResolveOptions {
  /** a branch or tag under refs/, or a commit sha; default "main" */
  revision?: string;
  env?: Env;
}

export interface ResolvedCheckpoint {
  /** the folder holding config.json and the safetensors weights */
  dir: string;
  /** how it was found */
  via: 'directory' | 'hub cache';
  /** the repository id and commit, when found in the hub cache */
  repoId?: string;
  commit?: string;
}

/**
 * Resolves a checkpoint folder or a hub repository id to the folder to read (see the header). An
 * existing folder wins over a name; a folder without safetensors weights, or a name that is not in
 * the cache, throws one line that says what was looked at and what to do.
 */
export function resolveCheckpoint(nameOrDir: string, opts: ResolveOptions = {}): ResolvedCheckpoint {
  if (!nameOrDir) throw new Error('checkpoint: empty name or folder');
  const asDir = resolve(nameOrDir);
  if (existsSync(asDir) && statSync(asDir).isDirectory()) {
    requireSafetensors(asDir, nameOrDir);
    return { dir: asDir, via: 'directory' };
  }
  if (!isRepoId(nameOrDir)) throw new Error(`checkpoint ${nameOrDir}: no such folder, and not a hub repository id ("org/name")`);
  const revision = opts.revision ?? 'main';
  const cache = hubCacheDir(opts.env);
  const repoDir = join(cache, `models--${nameOrDir.replaceAll('/', '--')}`);
  const looked = [asDir];
  let commit: string;
  if (SHA.test(revision)) commit = revision;
  else {
    const ref = join(repoDir, 'refs', revision);
    looked.push(ref);
    if (!existsSync(ref)) throw notInCache(nameOrDir, revision, looked);
    commit = readFileSync(ref, 'utf-8').trim();
    if (!SHA.test(commit)) throw new Error(`checkpoint ${nameOrDir}: ${ref} holds "${commit.slice(0, 60)}", not a commit sha`);
  }
  const dir = join(repoDir, 'snapshots', commit);
  looked.push(dir);
  if (!existsSync(dir)) throw notInCache(nameOrDir, revision, looked);
  requireSafetensors(dir, nameOrDir);
  return { dir, via: 'hub cache', repoId: nameOrDir, commit };
}

function notInCache(repoId: string, revision: string, looked: string[]): Error {
  const rev = revision === 'main' ? '' : ` --revision ${revision}`;
  return new Error(
    `checkpoint ${repoId}: not found (looked at ${looked.join(', ')}); nothing is downloaded here: fetch it with \`hf download ${repoId}${rev}\` ` +
      '(or `huggingface-cli download`), or set HF_HUB_CACHE / HF_HOME to the cache that holds it, or pass its folder',
  );
}

function requireSafetensors(dir: string, label: string): void {
  if (!existsSync(join(dir, 'config.json'))) throw new Error(`checkpoint ${label}: ${dir} has no config.json`);
  if (WEIGHTS.some((f) => existsSync(join(dir, f)))) return;
  const pickle = PICKLES.find((f) => existsSync(join(dir, f)));
  if (pickle) {
    const hint = /^state-spaces\/mamba-[^/]+$/.test(label) && !label.endsWith('-hf') ? ` (use ${label}-hf, which ships safetensors)` : '';
    throw new Error(
      `checkpoint ${label}: ${dir} ships ${pickle} only, which is unsupported: it is a Python pickle and this project never reads one${hint}; ` +
        'convert it to model.safetensors with transformers (from_pretrained, then save_pretrained(..., safe_serialization=True))',
    );
  }
  throw new Error(`checkpoint ${label}: ${dir} has no ${WEIGHTS.join(' or ')}`);
}
