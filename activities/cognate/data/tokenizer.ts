// Byte-level BPE (GPT-2 style) that reads and writes Hugging Face `tokenizer.json` files and encodes
// exactly as the `tokenizers` library does for the same file: same pre-tokenizer regex, same
// byte-to-unicode alphabet, same merge order (lowest rank first, leftmost first).
import fs from 'node:fs';
import { atomicWriteFile } from '../../../common/export/files';
import { NonRetryableError } from '../../../common/child';

export const EOS_TOKEN = '<|endoftext|>';
export const PAD_TOKEN = '<|pad|>';

/**
 * The GPT-2 split used by the `tokenizers` ByteLevel pre-tokenizer. `\s` is spelled out as the Unicode
 * White_Space set because JS's `\s` differs from Oniguruma's (JS adds U+FEFF, lacks U+0085), which would
 * split some texts differently from the Rust implementation.
 */
const WS = '\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const GPT2_SPLIT = new RegExp(`'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^${WS}\\p{L}\\p{N}]+|[${WS}]+(?![^${WS}])|[${WS}]+`, 'gu');

/** GPT-2's reversible map from bytes to printable characters, so every token is a visible string. */
function bytesToUnicode(): string[] {
  const printable: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) printable.push(b);
  for (let b = 0xa1; b <= 0xac; b++) printable.push(b);
  for (let b = 0xae; b <= 0xff; b++) printable.push(b);
  const table: string[] = new Array<string>(256);
  let shifted = 0;
  for (let b = 0; b < 256; b++) {
    table[b] = printable.includes(b) ? String.fromCharCode(b) : String.fromCharCode(256 + shifted++);
  }
  return table;
}

const BYTE_TO_CHAR = bytesToUnicode();
const CHAR_TO_BYTE = new Map(BYTE_TO_CHAR.map((ch, b) => [ch, b]));
const utf8Encoder = new TextEncoder();

/** Split text into pre-tokens and map each one's UTF-8 bytes to the byte-level alphabet. */
export function preTokenize(text: string, addPrefixSpace = false): string[] {
  const input = addPrefixSpace && text.length > 0 && !/^\s/u.test(text) ? ' ' + text : text;
  const words: string[] = [];
  for (const match of input.matchAll(GPT2_SPLIT)) {
    let mapped = '';
    for (const byte of utf8Encoder.encode(match[0])) mapped += BYTE_TO_CHAR[byte];
    words.push(mapped);
  }
  return words;
}

export interface Tokenizer {
  /** Ids of `text`; special-token strings inside the text become their ids, as in `tokenizers`. */
  encode(text: string): number[];
  /** Text of `ids`; special tokens are skipped unless asked for (the `tokenizers` default is to skip). */
  decode(ids: readonly number[], options?: { skipSpecialTokens?: boolean }): string;
  /** Largest id + 1: the embedding rows a model needs. */
  readonly vocabSize: number;
  readonly eosId: number;
  readonly padId: number;
  /** The tokenizer.json document, ready to write. */
  toJSON(): TokenizerJson;
}

interface AddedToken {
  id: number;
  content: string;
  single_word: boolean;
  lstrip: boolean;
  rstrip: boolean;
  normalized: boolean;
  special: boolean;
}

export interface TokenizerJson {
  version: string;
  truncation: null;
  padding: null;
  added_tokens: AddedToken[];
  normalizer: null;
  pre_tokenizer: { type: 'ByteLevel'; add_prefix_space: boolean; trim_offsets: boolean; use_regex: boolean };
  post_processor: null;
  decoder: { type: 'ByteLevel'; add_prefix_space: boolean; trim_offsets: boolean; use_regex: boolean };
  model: {
    type: 'BPE';
    dropout: null;
    unk_token: null;
    continuing_subword_prefix: null;
    end_of_word_suffix: null;
    fuse_unk: boolean;
    byte_fallback: boolean;
    ignore_merges: boolean;
    vocab: Record<string, number>;
    merges: [string, string][];
  };
}

function specialToken(id: number, content: string): AddedToken {
  return { id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true };
}

/** Pairs of ids packed into one number (ids < 2^21, so the key stays an exact double). */
const PAIR_SHIFT = 2 ** 21;
const pairKey = (a: number, b: number): number => a * PAIR_SHIFT + b;

class ByteLevelBpe implements Tokenizer {
  readonly vocabSize: number;
  private readonly idOf = new Map<string, number>();
  private readonly tokenOf: string[] = [];
  /** pair -> [rank, merged id] */
  private readonly merges = new Map<number, [number, number]>();
  private readonly specialIds = new Set<number>();
  private readonly specialSplit: RegExp | null;
  private readonly cache = new Map<string, number[]>();

  constructor(
    private readonly json: TokenizerJson,
    readonly eosId: number,
    readonly padId: number,
  ) {
    let maxId = -1;
    for (const [token, id] of Object.entries(json.model.vocab)) {
      this.idOf.set(token, id);
      this.tokenOf[id] = token;
      maxId = Math.max(maxId, id);
    }
    for (const added of json.added_tokens) {
      this.idOf.set(added.content, added.id);
      this.tokenOf[added.id] = added.content;
      if (added.special) this.specialIds.add(added.id);
      maxId = Math.max(maxId, added.id);
    }
    this.vocabSize = maxId + 1;
    if (this.vocabSize >= PAIR_SHIFT)
      throw new NonRetryableError(`tokenizer has ${this.vocabSize} tokens; at most ${PAIR_SHIFT - 1} are supported`);
    json.model.merges.forEach(([a, b], rank) => {
      const left = this.idOf.get(a);
      const right = this.idOf.get(b);
      const merged = this.idOf.get(a + b);
      if (left === undefined || right === undefined || merged === undefined) {
        throw new NonRetryableError(`tokenizer merge #${rank} ("${a}" "${b}") uses a token missing from the vocabulary`);
      }
      const key = pairKey(left, right);
      if (!this.merges.has(key)) this.merges.set(key, [rank, merged]);
    });
    const contents = json.added_tokens.map((t) => t.content).sort((x, y) => y.length - x.length);
    this.specialSplit = contents.length ? new RegExp(`(${contents.map(escapeRegExp).join('|')})`, 'u') : null;
  }

  encode(text: string): number[] {
    const ids: number[] = [];
    const segments = this.specialSplit ? text.split(this.specialSplit) : [text];
    // split() with a capture group alternates plain text and added tokens
    segments.forEach((segment, i) => {
      if (i % 2 === 1) ids.push(this.idOf.get(segment) as number);
      else if (segment)
        for (const word of preTokenize(segment, this.json.pre_tokenizer.add_prefix_space)) ids.push(...this.encodeWord(word));
    });
    return ids;
  }

  /** Merge the lowest-rank adjacent pair (leftmost on ties) until none is left: the `tokenizers` order. */
  private encodeWord(word: string): number[] {
    const cached = this.cache.get(word);
    if (cached) return cached;
    const symbols: number[] = [];
    for (const ch of word) {
      const id = this.idOf.get(ch);
      if (id === undefined) throw new NonRetryableError(`tokenizer has no token for the byte-level symbol "${ch}"`);
      symbols.push(id);
    }
    for (;;) {
      let bestRank = Infinity;
      let bestPos = -1;
      let bestId = -1;
      for (let i = 0; i + 1 < symbols.length; i++) {
        const merge = this.merges.get(pairKey(symbols[i], symbols[i + 1]));
        if (merge && merge[0] < bestRank) [bestRank, bestPos, bestId] = [merge[0], i, merge[1]];
      }
      if (bestPos < 0) break;
      symbols.splice(bestPos, 2, bestId);
    }
    if (this.cache.size < 200_000) this.cache.set(word, symbols);
    return symbols;
  }

  decode(ids: readonly number[], options: { skipSpecialTokens?: boolean } = {}): string {
    const skip = options.skipSpecialTokens ?? true;
    const bytes: number[] = [];
    let out = '';
    const flush = (): void => {
      out += Buffer.from(bytes).toString('utf8'); // invalid UTF-8 becomes U+FFFD, like from_utf8_lossy
      bytes.length = 0;
    };
    for (const id of ids) {
      const token = this.tokenOf[id];
      if (token === undefined) throw new Error(`token id ${id} is outside the vocabulary (size ${this.vocabSize})`);
      if (this.specialIds.has(id)) {
        if (skip) continue;
        flush();
        out += token;
        continue;
      }
      for (const ch of token) {
        const byte = CHAR_TO_BYTE.get(ch);
        if (byte === undefined) throw new Error(`token ${id} ("${token}") is not a byte-level token`);
        bytes.push(byte);
      }
    }
    flush();
    return out;
  }

  toJSON(): TokenizerJson {
    return this.json;
  }
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export interface TrainBpeOptions {
  /** Target size including the 256 byte symbols and the special tokens. */
  vocabSize: number;
  /** Pairs seen fewer times than this are never merged (the `tokenizers` min_frequency). */
  minFrequency?: number;
  onProgress?: (merges: number, target: number) => void;
}

/**
 * Learn merges over word frequencies. Pair counts are kept up to date incrementally: a merge only
 * revisits the words that contain the pair, and a max-heap with lazy invalidation picks the next pair.
 */
export function trainByteLevelBpe(texts: Iterable<string>, options: TrainBpeOptions): Tokenizer {
  const specials = [EOS_TOKEN, PAD_TOKEN];
  const base = specials.length + 256;
  if (options.vocabSize < base) {
    throw new NonRetryableError(
      `vocabSize ${options.vocabSize} is too small for a byte-level BPE: it needs at least ${base} (256 byte symbols + ${specials.length} special tokens)`,
    );
  }
  const minFrequency = Math.max(2, options.minFrequency ?? 2);
  const tokens: string[] = [...specials, ...BYTE_TO_CHAR];
  const idOf = new Map(tokens.map((t, i) => [t, i]));

  const wordFreq = new Map<string, number>();
  for (const text of texts) for (const w of preTokenize(text)) wordFreq.set(w, (wordFreq.get(w) ?? 0) + 1);
  const words: number[][] = [];
  const freqs: number[] = [];
  for (const [w, f] of wordFreq) {
    words.push(Array.from(w, (ch) => idOf.get(ch) as number));
    freqs.push(f);
  }

  const counts = new Map<number, number>();
  const where = new Map<number, Set<number>>();
  words.forEach((symbols, wi) => {
    for (let i = 0; i + 1 < symbols.length; i++) {
      const key = pairKey(symbols[i], symbols[i + 1]);
      counts.set(key, (counts.get(key) ?? 0) + freqs[wi]);
      let set = where.get(key);
      if (!set) where.set(key, (set = new Set()));
      set.add(wi);
    }
  });
  const heap = new PairHeap();
  for (const [key, count] of counts) heap.push(count, key);

  const merges: [string, string][] = [];
  const target = options.vocabSize;
  while (tokens.length < target && heap.size > 0) {
    const [count, key] = heap.pop();
    const current = counts.get(key) ?? 0;
    if (current !== count) {
      if (current > 0) heap.push(current, key); // stale entry: requeue with the real count
      continue;
    }
    if (count < minFrequency) break;
    const left = Math.floor(key / PAIR_SHIFT);
    const right = key - left * PAIR_SHIFT;
    const mergedToken = tokens[left] + tokens[right];
    // Two merge paths can spell the same token; like `tokenizers`, reuse its id.
    let merged = idOf.get(mergedToken);
    if (merged === undefined) {
      merged = tokens.length;
      tokens.push(mergedToken);
      idOf.set(mergedToken, merged);
    }
    merges.push([tokens[left], tokens[right]]);

    const deltas = new Map<number, number>();
    const bump = (a: number, b: number, by: number, wi: number): void => {
      const k = pairKey(a, b);
      deltas.set(k, (deltas.get(k) ?? 0) + by);
      if (by > 0) {
        let set = where.get(k);
        if (!set) where.set(k, (set = new Set()));
        set.add(wi);
      }
    };
    for (const wi of where.get(key) ?? []) {
      const symbols = words[wi];
      const f = freqs[wi];
      for (let i = 0; i + 1 < symbols.length; i++) {
        if (symbols[i] !== left || symbols[i + 1] !== right) continue;
        if (i > 0) {
          bump(symbols[i - 1], left, -f, wi);
          bump(symbols[i - 1], merged, f, wi);
        }
        if (i + 2 < symbols.length) {
          bump(right, symbols[i + 2], -f, wi);
          bump(merged, symbols[i + 2], f, wi);
        }
        symbols.splice(i, 2, merged);
      }
    }
    // every occurrence was merged, so the pair itself is gone
    counts.delete(key);
    where.delete(key);
    for (const [k, d] of deltas) {
      if (k === key || d === 0) continue;
      const next = (counts.get(k) ?? 0) + d;
      if (next > 0) counts.set(k, next);
      else counts.delete(k);
      if (d > 0) heap.push(next, k);
    }
    if (options.onProgress && merges.length % 500 === 0) options.onProgress(tokens.length - base, target - base);
  }

  // Specials go in the model vocab too: `tokenizers` otherwise renumbers added tokens past the vocab.
  const vocab: Record<string, number> = Object.fromEntries(tokens.map((t, id) => [t, id]));
  const json: TokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: specials.map((content, id) => specialToken(id, content)),
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges,
    },
  };
  return new ByteLevelBpe(json, 0, 1);
}

/** Max-heap of (count, pair) ordered by count, then by smaller pair key so training is deterministic. */
class PairHeap {
  private readonly countsArr: number[] = [];
  private readonly keys: number[] = [];
  get size(): number {
    return this.keys.length;
  }
  private above(i: number, j: number): boolean {
    const ci = this.countsArr[i];
    const cj = this.countsArr[j];
    return ci > cj || (ci === cj && this.keys[i] < this.keys[j]);
  }
  private swap(i: number, j: number): void {
    [this.countsArr[i], this.countsArr[j]] = [this.countsArr[j], this.countsArr[i]];
    [this.keys[i], this.keys[j]] = [this.keys[j], this.keys[i]];
  }
  push(count: number, key: number): void {
    this.countsArr.push(count);
    this.keys.push(key);
    let i = this.keys.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.above(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }
  pop(): [number, number] {
    const top: [number, number] = [this.countsArr[0], this.keys[0]];
    const lastCount = this.countsArr.pop() as number;
    const lastKey = this.keys.pop() as number;
    if (this.keys.length > 0) {
      this.countsArr[0] = lastCount;
      this.keys[0] = lastKey;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let best = i;
        if (l < this.keys.length && this.above(l, best)) best = l;
        if (r < this.keys.length && this.above(r, best)) best = r;
        if (best === i) break;
        this.swap(i, best);
        i = best;
      }
    }
    return top;
  }
}

const EOS_CANDIDATES = [EOS_TOKEN, '</s>', '<eos>', '<|end_of_text|>', '[SEP]'];
const PAD_CANDIDATES = [PAD_TOKEN, '<pad>', '[PAD]', '<|padding|>'];

function fail(file: string, what: string): never {
  throw new NonRetryableError(`${file}: ${what}`);
}

/**
 * Load a Hugging Face tokenizer.json. Supported: a BPE model with the ByteLevel pre-tokenizer and no
 * normalizer (GPT-2, RoBERTa, GPT-NeoX style and the ones trainByteLevelBpe writes); anything else is a
 * clear error rather than a silently different encoding.
 */
export function loadTokenizer(file: string): Tokenizer {
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    fail(file, `cannot read tokenizer.json (${(err as Error).message})`);
  }
  const doc = raw as Partial<TokenizerJson> & { model?: { type?: string; vocab?: unknown; merges?: unknown } };
  if (typeof doc !== 'object' || doc === null) fail(file, 'not a JSON object');
  if (doc.model?.type !== 'BPE') fail(file, `model.type is ${JSON.stringify(doc.model?.type)}; only "BPE" is supported`);
  if (doc.normalizer !== null && doc.normalizer !== undefined)
    fail(file, 'has a normalizer; only byte-level BPE without a normalizer is supported');
  const pre = doc.pre_tokenizer as { type?: string; add_prefix_space?: boolean; use_regex?: boolean } | null | undefined;
  if (pre?.type !== 'ByteLevel' || pre.use_regex === false)
    fail(file, `pre_tokenizer must be ByteLevel with use_regex (found ${JSON.stringify(pre?.type)})`);
  const vocab = doc.model.vocab;
  if (typeof vocab !== 'object' || vocab === null || Array.isArray(vocab)) fail(file, 'model.vocab must be an object of token -> id');
  for (const [token, id] of Object.entries(vocab))
    if (!Number.isInteger(id) || id < 0) fail(file, `model.vocab["${token}"] is not a non-negative integer id`);
  if (!Array.isArray(doc.model.merges)) fail(file, 'model.merges must be a list');
  // tokenizers < 0.20 writes merges as "a b" strings, newer versions as ["a", "b"] pairs
  const merges: [string, string][] = (doc.model.merges as unknown[]).map((m, i) => {
    if (Array.isArray(m) && m.length === 2 && typeof m[0] === 'string' && typeof m[1] === 'string') return [m[0], m[1]];
    if (typeof m === 'string' && m.split(' ').length === 2) return m.split(' ') as [string, string];
    fail(file, `model.merges[${i}] is neither "a b" nor ["a", "b"]`);
  });
  const added = doc.added_tokens ?? [];
  if (!Array.isArray(added)) fail(file, 'added_tokens must be a list');
  const json: TokenizerJson = {
    ...(doc as TokenizerJson),
    added_tokens: added,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: pre.add_prefix_space ?? false, trim_offsets: true, use_regex: true },
    model: { ...doc.model, vocab: vocab, merges },
  };
  const idOf = (content: string): number | undefined => added.find((t) => t.content === content)?.id ?? vocab[content];
  const eosName = EOS_CANDIDATES.find((c) => idOf(c) !== undefined);
  if (eosName === undefined) fail(file, `has no end-of-text token (looked for ${EOS_CANDIDATES.join(', ')})`);
  const eosId = idOf(eosName) as number;
  const padName = PAD_CANDIDATES.find((c) => idOf(c) !== undefined);
  return new ByteLevelBpe(json, eosId, padName === undefined ? eosId : (idOf(padName) as number));
}

export function saveTokenizer(tokenizer: Tokenizer, file: string): void {
  atomicWriteFile(file, JSON.stringify(tokenizer.toJSON()));
}
