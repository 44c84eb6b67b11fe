// Tokens as strings, as TransformerLens offers them (to_tokens, to_str_tokens, to_string): the text
// side of a model loaded with its tokenizer.json. MambaLM's toTokens / toStrTokens / toString call
// these. Kept free of Node imports (the tokenizer arrives as an object), so the browser bundle has
// them too.

/** What the text functions need of a tokenizer (mamba/tokenizer.ts's Tokenizer is one). */
export interface TextTokenizer {
  /** where it was loaded from, for errors */
  readonly source: string;
  readonly vocabSize: number;
  encode(text: string): number[];
  decode(ids: readonly number[]): string;
  tokenToId(token: string): number | undefined;
}

export interface ToTokensOptions {
  /**
   * Put the BOS token (<|endoftext|>, GPT-NeoX's) first. Default false: the Mamba checkpoints were
   * trained without one and transformers' tokenizer for them adds none (TransformerLens' default of
   * true is for GPT-2-style models).
   */
  prependBos?: boolean;
}

const BOS = '<|endoftext|>';
const PAD = '<|padding|>';

/** A tokenizer whose ids all fit a model of `vocabSize` (checked once, when it is attached). */
export function checkTokenizerFits(tok: TextTokenizer, vocabSize: number): void {
  if (tok.vocabSize > vocabSize)
    throw new Error(`tokenizer ${tok.source}: ${tok.vocabSize} tokens, but the model's vocab_size is ${vocabSize}`);
}

function special(tok: TextTokenizer, token: string, why: string): number {
  const id = tok.tokenToId(token);
  if (id === undefined) throw new Error(`tokenizer ${tok.source}: has no ${token} token, needed ${why}`);
  return id;
}

/**
 * Token ids [batch][pos] for one text or several (IdsLike, ready for forward / runWithCache; an
 * empty text gives an empty row, which the model refuses to run, as it refuses any empty input).
 * Several texts of different lengths are padded on the right with <|padding|>: a causal model's
 * outputs at the real positions do not depend on what comes after them, so right padding changes
 * nothing there (read only positions < each text's own length).
 */
export function toTokens(tok: TextTokenizer, text: string | readonly string[], opts: ToTokensOptions = {}): number[][] {
  const texts = typeof text === 'string' ? [text] : text;
  if (!texts.length) throw new Error('toTokens: no text');
  const bos = opts.prependBos ? [special(tok, BOS, 'by prependBos')] : [];
  const rows = texts.map((t, i) => {
    if (typeof t !== 'string') throw new Error(`toTokens: text ${i} is a ${typeof t}, not a string`);
    return [...bos, ...tok.encode(t)];
  });
  const T = Math.max(...rows.map((r) => r.length));
  if (rows.some((r) => r.length < T)) {
    const pad = special(tok, PAD, 'to pad texts of different lengths');
    for (const r of rows) while (r.length < T) r.push(pad);
  }
  return rows;
}

/** Each token of `input` (a text, or ids) as its own string (" the", "cat"), in order. */
export function toStrTokens(tok: TextTokenizer, input: string | readonly number[], opts: ToTokensOptions = {}): string[] {
  const ids = typeof input === 'string' ? toTokens(tok, input, opts)[0] : input;
  return ids.map((id) => tok.decode([id]));
}

/** The text of `ids`; one string per row for [batch][pos]. */
export function idsToString(tok: TextTokenizer, ids: readonly number[]): string;
export function idsToString(tok: TextTokenizer, ids: readonly (readonly number[])[]): string[];
export function idsToString(tok: TextTokenizer, ids: readonly number[] | readonly (readonly number[])[]): string | string[] {
  if (ids.length && typeof ids[0] !== 'number') return (ids as readonly (readonly number[])[]).map((r) => tok.decode(r));
  return tok.decode(ids as readonly number[]);
}
