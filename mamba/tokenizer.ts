// Hugging Face `tokenizer.json` tokenizers (GPT-NeoX-style byte-level BPE for the Mamba checkpoints),
// loaded through @huggingface/tokenizers, a maintained pure-JS implementation of the same format
// that the Rust `tokenizers` crate reads. We wrap it to keep the rest of the project independent of
// that library's API and to name the file in errors. Browser-safe: reading a file loads node:fs
// only when called (a page builds one with fromJSON or fromUrl).
import { Tokenizer as HFTokenizer } from '@huggingface/tokenizers';

export interface DecodeOptions {
  /** Drop special tokens such as <|endoftext|>. Default false: interpretability wants to see them. */
  skipSpecialTokens?: boolean;
}

export class Tokenizer {
  private constructor(
    /** Where the tokenizer was loaded from (for error messages). */
    readonly source: string,
    private readonly inner: HFTokenizer,
  ) {}

  /** Loads `tokenizer.json`, and `tokenizer_config.json` beside it when present. */
  static async fromFile(path: string, configPath?: string): Promise<Tokenizer> {
    const json = await readJson(path, 'tokenizer');
    const config = configPath ? ((await readJson(configPath, 'tokenizer config')) as object) : {};
    return Tokenizer.fromJSON(json, config, path);
  }

  /**
   * Fetches `url` (a tokenizer.json) and builds the tokenizer; null when the server answers 404 and
   * `optional` is set (a checkpoint folder without one), an error naming the URL otherwise.
   */
  static async fromUrl(url: string, opts: { fetch?: typeof fetch; optional?: boolean } = {}): Promise<Tokenizer | null> {
    const res = await (opts.fetch ?? globalThis.fetch)(url);
    if (res.status === 404 && opts.optional) return null;
    if (!res.ok) throw new Error(`tokenizer ${url}: answered ${res.status} ${res.statusText}`);
    let json: unknown;
    try {
      json = JSON.parse(await res.text());
    } catch (e) {
      throw new Error(`tokenizer ${url}: not valid JSON (${(e as Error).message})`);
    }
    return Tokenizer.fromJSON(json, {}, url);
  }

  static fromJSON(json: unknown, config: object = {}, source = '<tokenizer.json>'): Tokenizer {
    if (typeof json !== 'object' || json === null || !('model' in json)) {
      throw new Error(`tokenizer ${source}: not a tokenizer.json (no "model" field)`);
    }
    // A WordLevel tokenizer.json names its unk_token in the model; @huggingface/tokenizers 0.2 reads
    // it only from tokenizer_config.json (an unknown word would get an undefined id without one)
    const unk = (json.model as { unk_token?: unknown }).unk_token;
    const withUnk = typeof unk === 'string' && !('unk_token' in config) ? { ...config, unk_token: unk } : config;
    try {
      return new Tokenizer(source, new HFTokenizer(json, withUnk));
    } catch (e) {
      throw new Error(`tokenizer ${source}: could not build the tokenizer (${(e as Error).message})`);
    }
  }

  /** Token ids for `text`, with the tokenizer's own post-processing (none for GPT-NeoX). */
  encode(text: string): number[] {
    return this.inner.encode(text).ids;
  }

  /** Text for `ids`; no clean-up of spaces, so decode(encode(s)) === s for byte-level BPE. */
  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    for (const id of ids) {
      if (!Number.isInteger(id) || this.inner.id_to_token(id) === undefined) {
        throw new Error(`tokenizer ${this.source}: decode got id ${id}, which is not in the vocabulary`);
      }
    }
    if (!ids.length) return ''; // the library refuses an empty list; Rust tokenizers decodes it to ''
    return this.inner.decode([...ids], {
      skip_special_tokens: options.skipSpecialTokens ?? false,
      clean_up_tokenization_spaces: false,
    });
  }

  /** The vocabulary string of one token (byte-level form, e.g. "Ġthe"), for labelling plots. */
  idToToken(id: number): string | undefined {
    return this.inner.id_to_token(id);
  }

  tokenToId(token: string): number | undefined {
    return this.inner.token_to_id(token);
  }

  /** Size of the vocabulary including added tokens (the model's vocab_size may be padded above it). */
  get vocabSize(): number {
    return this.inner.get_vocab(true).size;
  }
}

async function readJson(path: string, what: string): Promise<unknown> {
  if (typeof process === 'undefined' || !process.versions?.node)
    throw new Error(`${what} ${path}: reading a file needs Node; in a page use Tokenizer.fromUrl or Tokenizer.fromJSON`);
  const { readFile } = await import('node:fs/promises');
  const text = await readFile(path, 'utf-8');
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`${what} ${path}: not valid JSON (${(e as Error).message})`);
  }
}
