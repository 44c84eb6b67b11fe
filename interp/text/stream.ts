// Text files -> documents -> token windows, streamed: the files are read piece by piece and
// tokenised as they come, so a text file far larger than memory passes through in bounded memory,
// and a run keeps only the windows it samples (sampleWindows: a seeded reservoir, uniform over
// every window of every file).
//
// Formats: a `.jsonl` file holds one JSON object per line with a string field `text` (one document
// each; a bad line is an error naming file and line); any other file is plain UTF-8 text, one
// document per file, read in pieces that end at a newline (each piece is tokenised alone, so a token
// never spans a piece boundary: for byte-level BPE that only splits runs of newlines). Line ends
// are read as "\n" (CRLF too), and a last line without one gets one.
//
// Windows: each document's tokens, with the BOS token first when `bos` is given (one per document,
// as GPT-NeoX-style models see a document start), cut into consecutive windows of contextSize
// tokens that never cross a document boundary; the shorter remainder at a document's end is
// dropped. Each window names its file, document and first token's offset, so examples can show
// where they came from.
import { createReadStream, existsSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import type { Rng } from '../../engine/random.ts';

export interface TextDocument {
  /** the file it came from */
  source: string;
  /** its index among the file's documents (0 for a plain text file) */
  doc: number;
  /** 1-based line of a JSONL document */
  line?: number;
}

/** A piece of a document's text, in order; a plain text file arrives as several pieces of one document. */
export interface TextPiece extends TextDocument {
  text: string;
  /** whether this is the document's first piece */
  first: boolean;
}

export interface TokenWindow extends TextDocument {
  /** offset of the window's first token in the document's token stream (BOS counted) */
  start: number;
  ids: number[];
}

export interface Encoder {
  encode(text: string): number[];
}

/** Default size of a plain-text piece: about 1 MB of text at a time. */
export const PIECE_CHARS = 1 << 20;

/**
 * Files for `patterns`: paths, or globs whose last segment holds `*` or `?` (e.g. "data/*.jsonl"),
 * each sorted by name; a pattern that names nothing is an error naming it.
 */
export function expandTextPaths(patterns: readonly string[]): string[] {
  const out: string[] = [];
  for (const p of patterns) {
    const name = basename(p);
    if (!/[*?]/.test(name)) {
      const abs = resolve(p);
      if (!existsSync(abs)) throw new Error(`--text ${p}: no such file`);
      if (!statSync(abs).isFile()) throw new Error(`--text ${p}: not a file`);
      out.push(abs);
      continue;
    }
    const dir = resolve(dirname(p));
    if (/[*?]/.test(dirname(p))) throw new Error(`--text ${p}: wildcards only in the file name`);
    if (!existsSync(dir)) throw new Error(`--text ${p}: no such folder ${dir}`);
    const re = new RegExp(
      `^${name
        .replace(/[.+^${}()|[\]\\]/g, '\\$&')
        .replaceAll('*', '.*')
        .replaceAll('?', '.')}$`,
    );
    const hits = readdirSync(dir)
      .filter((f) => re.test(f) && statSync(join(dir, f)).isFile())
      .sort()
      .map((f) => join(dir, f));
    if (!hits.length) throw new Error(`--text ${p}: matches no file`);
    out.push(...hits);
  }
  return out;
}

/** The documents of `paths` as pieces of text, in file order (see the header for the formats). */
export async function* readTextPieces(paths: readonly string[], pieceChars = PIECE_CHARS): AsyncGenerator<TextPiece> {
  for (const source of paths) {
    const lines = createInterface({ input: createReadStream(source, { encoding: 'utf-8' }), crlfDelay: Infinity });
    if (source.endsWith('.jsonl')) {
      let line = 0,
        doc = 0;
      for await (const raw of lines) {
        line++;
        if (!raw.trim()) continue;
        let obj: unknown;
        try {
          obj = JSON.parse(raw);
        } catch (e) {
          throw new Error(`${source}:${line}: not JSON (${(e as Error).message})`);
        }
        const text = (obj as { text?: unknown } | null)?.text;
        if (typeof text !== 'string') throw new Error(`${source}:${line}: no string field "text"`);
        yield { source, doc: doc++, line, text, first: true };
      }
      continue;
    }
    let buf = '',
      first = true;
    for await (const raw of lines) {
      buf += `${raw}\n`;
      if (buf.length >= pieceChars) {
        yield { source, doc: 0, text: buf, first };
        buf = '';
        first = false;
      }
    }
    if (buf || first) yield { source, doc: 0, text: buf, first };
  }
}

/** Consecutive windows of `contextSize` tokens of each document (see the header). */
export async function* tokenWindows(
  pieces: AsyncIterable<TextPiece>,
  tok: Encoder,
  opts: { contextSize: number; bos?: number },
): AsyncGenerator<TokenWindow> {
  const T = opts.contextSize;
  if (!Number.isInteger(T) || T < 1) throw new Error(`tokenWindows: contextSize must be a positive integer, got ${T}`);
  let pending: number[] = [],
    start = 0,
    current: TextDocument | null = null;
  for await (const piece of pieces) {
    if (piece.first) {
      pending = opts.bos === undefined ? [] : [opts.bos];
      start = 0;
      current = { source: piece.source, doc: piece.doc, ...(piece.line === undefined ? {} : { line: piece.line }) };
    }
    if (!current) throw new Error(`tokenWindows: ${piece.source} document ${piece.doc} continues a document that never started`);
    const ids = tok.encode(piece.text);
    for (const id of ids) pending.push(id);
    let at = 0;
    while (pending.length - at >= T) {
      yield { ...current, start, ids: pending.slice(at, at + T) };
      at += T;
      start += T;
    }
    pending = pending.slice(at);
  }
}

export interface WindowSample {
  /** the sampled windows, in the order they came in the files */
  windows: TokenWindow[];
  /** every window seen, and the documents they came from (documents shorter than one window give none) */
  seenWindows: number;
  seenDocuments: number;
}

/**
 * `n` windows drawn uniformly without replacement from all of `windows` (reservoir sampling,
 * Algorithm R; all of them when there are at most n), holding only n at any time.
 */
export async function sampleWindows(windows: AsyncIterable<TokenWindow>, n: number, rng: Rng): Promise<WindowSample> {
  if (!Number.isInteger(n) || n < 1) throw new Error(`sampleWindows: n must be a positive integer, got ${n}`);
  const kept: { order: number; w: TokenWindow }[] = [];
  let seen = 0,
    docs = 0;
  let last: TokenWindow | null = null;
  for await (const w of windows) {
    // windows come document by document, so a new document is a change from the last window's
    if (!last || last.source !== w.source || last.doc !== w.doc) docs++;
    last = w;
    if (kept.length < n) kept.push({ order: seen, w });
    else {
      const j = Math.floor(rng.uniform() * (seen + 1));
      if (j < n) kept[j] = { order: seen, w };
    }
    seen++;
  }
  kept.sort((a, b) => a.order - b.order);
  return { windows: kept.map((k) => k.w), seenWindows: seen, seenDocuments: docs };
}
