/**
 * Strict, bounded bencode (BEP 3): an iterative decoder no input can hang, crash or
 * exhaust (depth, item, size and length limits; canonical safe integers only), the
 * raw byte spans of top-level dict values (for the info hash), an encoder, and small
 * typed accessors for untrusted dicts. Knows nothing about torrents.
 * Bytes after the value are an error (tracker replies, KRPC, PEX, BEP 10 all decode
 * with decode()), except where the caller asks: decodePrefix (BEP 9, data follows)
 * and decodeWithSpans with `allowTrailingBytes` (a .torrent file: libtorrent ignores
 * what follows its dictionary).
 * decodeWithSpans with a `shape` (the keys a reader looks at) builds only those: every
 * other value is checked by the same rules and limits but never built, so a document's
 * memory is what its reader needs, not ~100x the bytes of values nobody reads.
 */
import { BencodeError } from '../core/errors.js';

export type BValue = Buffer | number | BValue[] | BDict;
/** Keys are the raw key bytes as latin1 ('binary') strings. */
export type BDict = Map<string, BValue>;

export interface DecodeLimits {
  /** Deepest allowed nesting of lists/dicts (default 100). */
  maxDepth?: number;
  /** Most values (strings, integers, lists, dicts) in one document (default 3,000,000). */
  maxItems?: number;
  /** Largest input accepted, in bytes (default 10 MiB). */
  maxBytes?: number;
}

export const DEFAULT_MAX_DEPTH = 100;
export const DEFAULT_MAX_ITEMS = 3_000_000;
export const DEFAULT_MAX_BYTES = 10 * 1024 * 1024;

/** [start, end) byte offsets of a value in the decoded input. */
export interface ByteSpan {
  readonly start: number;
  readonly end: number;
}

/** Longest digit run that can still be a safe integer (2^53 - 1 has 16 digits). */
const MAX_INT_DIGITS = 16;

const CH_I = 0x69; // 'i'
const CH_L = 0x6c; // 'l'
const CH_D = 0x64; // 'd'
const CH_E = 0x65; // 'e'
const CH_COLON = 0x3a; // ':'
const CH_MINUS = 0x2d; // '-'
const CH_0 = 0x30;
const CH_9 = 0x39;

/**
 * What a reader looks at in a document (decodeWithSpans `shape`): 'scalar' where it reads
 * a byte string or an integer, a DictShape or ListShape where it reads into a container.
 * Scalars are always built. A container of the kind expected is built by its shape; one
 * of another kind (a list where a dict is read, any container where a scalar is) is
 * checked and built empty, so a reader sees its kind (for its error) but never its items.
 */
export type Shape = 'scalar' | DictShape | ListShape;

/** A dict whose listed keys are read; the values of any other key are checked, never built. */
export class DictShape {
  /** @internal */
  readonly entries: readonly { readonly key: string; readonly bytes: Buffer; readonly shape: Shape }[];
  constructor(keys: Readonly<Record<string, Shape>>) {
    this.entries = Object.entries(keys).map(([key, shape]) => ({ key, bytes: Buffer.from(key, 'latin1'), shape }));
  }
}

/**
 * A list every item of which is read with one shape (items are never dropped: indexes stay).
 * With `take`, each item is handed to it (with its index) as soon as it is decoded, and not
 * kept: the list is built empty, so a long list costs what its reader makes of each item,
 * never a tree of all of them at once.
 */
export class ListShape {
  constructor(
    readonly item: Shape,
    readonly take?: (item: BValue, index: number) => void,
  ) {}
}

/** How a value is decoded: built whole (no shape: decode() as ever), checked only, or by a shape. */
const ALL = 0;
const SKIP = 1;
type Plan = typeof ALL | typeof SKIP | Shape;

interface Frame {
  readonly kind: 'list' | 'dict';
  readonly start: number;
  /** The container attached when the frame ends; undefined for a skipped value (nothing attached). */
  readonly value: BValue[] | BDict | undefined;
  /** How its items are decoded: ALL, SKIP, or its own shape (a ListShape or DictShape). */
  readonly plan: Plan;
  /** dict: a key was read and its value is awaited. */
  awaiting: boolean;
  /** dict: the key (latin1) the awaited value is set under, undefined when it is not built. */
  key: string | undefined;
  /** dict, plan not ALL: how the awaited value is decoded. */
  valuePlan: Plan;
  /** dict, plan not ALL: the previous key's bytes [lastKeyStart, lastKeyEnd); -1 before the first. */
  lastKeyStart: number;
  lastKeyEnd: number;
  /** dict, plan not ALL: its keys' offsets are keyStarts[keyBase..) of the decode (while they come in order). */
  readonly keyBase: number;
  /** dict, plan not ALL: every key so far, kept only once keys came out of order (duplicates possible). */
  seen: Set<string> | undefined;
  /** list: items so far (the index a ListShape's take is given). */
  count: number;
}

interface DecodeResult {
  value: BValue;
  end: number;
  spans: Map<string, ByteSpan>;
}

/** Shared by every empty byte string of a shaped decode (it has no bytes to change). */
const EMPTY = Buffer.alloc(0);

function isDigit(c: number | undefined): boolean {
  return c !== undefined && c >= CH_0 && c <= CH_9;
}

/**
 * Read a run of digits starting at `pos` (with an optional leading '-' when
 * `allowMinus`), canonical and safe. Returns the number and the offset after it.
 */
function readNumber(bytes: Uint8Array, pos: number, allowMinus: boolean, what: string): { n: number; pos: number } {
  const start = pos;
  let negative = false;
  if (allowMinus && bytes[pos] === CH_MINUS) {
    negative = true;
    pos++;
  }
  const digitsStart = pos;
  while (isDigit(bytes[pos])) {
    pos++;
    if (pos - digitsStart > MAX_INT_DIGITS) throw new BencodeError(`${what} is not a safe integer`, start);
  }
  const digits = pos - digitsStart;
  if (digits === 0) {
    if (pos >= bytes.length) throw new BencodeError(`truncated ${what}`, pos);
    throw new BencodeError(`${what} has no digits`, start);
  }
  if (bytes[digitsStart] === CH_0 && digits > 1) throw new BencodeError(`${what} has a leading zero`, start);
  if (negative && digits === 1 && bytes[digitsStart] === CH_0) throw new BencodeError(`${what} is negative zero`, start);
  let n = 0;
  for (let i = digitsStart; i < pos; i++) n = n * 10 + (bytes[i]! - CH_0);
  if (!Number.isSafeInteger(n)) throw new BencodeError(`${what} is not a safe integer`, start);
  return { n: negative ? -n : n, pos };
}

/** -1, 0 or 1 as bytes [a, aEnd) sort before, equal or after [b, bEnd). */
function compareBytes(bytes: Uint8Array, a: number, aEnd: number, b: number, bEnd: number): number {
  const n = Math.min(aEnd - a, bEnd - b);
  for (let i = 0; i < n; i++) {
    const d = bytes[a + i]! - bytes[b + i]!;
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return aEnd - a === bEnd - b ? 0 : aEnd - a < bEnd - b ? -1 : 1;
}

/** The keys (latin1) whose length prefixes start at `starts[from..to)`, in already-checked bytes. */
function keysAt(input: Buffer, starts: Uint32Array, from: number, to: number): Set<string> {
  const keys = new Set<string>();
  for (let i = from; i < to; i++) {
    const len = readNumber(input, starts[i]!, false, 'string length');
    keys.add(input.toString('latin1', len.pos + 1, len.pos + 1 + len.n));
  }
  return keys;
}

function decodeCore(bytes: Uint8Array, limits: DecodeLimits | undefined, requireEnd: boolean, recordSpans: boolean, shape?: Shape): DecodeResult {
  const maxDepth = limits?.maxDepth ?? DEFAULT_MAX_DEPTH;
  const maxItems = limits?.maxItems ?? DEFAULT_MAX_ITEMS;
  const maxBytes = limits?.maxBytes ?? DEFAULT_MAX_BYTES;
  if (bytes.length > maxBytes) throw new BencodeError(`input larger than ${maxBytes} bytes`, maxBytes);
  if (bytes.length === 0) throw new BencodeError('empty input', 0);
  const input = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const rootPlan: Plan = shape ?? ALL;

  const stack: Frame[] = [];
  const spans = new Map<string, ByteSpan>();
  /** Offsets of the keys of the open shaped dicts whose keys came in order so far (each dict's from its keyBase). */
  let keyStarts = new Uint32Array(0);
  let keyTop = 0;
  let items = 0;
  let pos = 0;
  let root: BValue | undefined;
  let rootDone = false;

  /** A finished value spanning [start, pos) goes to its parent (nothing when undefined: not built), or is the root. */
  const attach = (value: BValue | undefined, start: number): void => {
    const parent = stack[stack.length - 1];
    if (parent === undefined) {
      root = value;
      rootDone = true;
      return;
    }
    if (parent.kind === 'list') {
      if (value === undefined) return;
      const take = parent.plan instanceof ListShape ? parent.plan.take : undefined;
      if (take !== undefined) take(value, parent.count++);
      else (parent.value as BValue[]).push(value);
      return;
    }
    if (value !== undefined) {
      const key = parent.key!;
      (parent.value as BDict).set(key, value);
      if (recordSpans && stack.length === 1) spans.set(key, { start, end: pos });
    }
    parent.key = undefined;
    parent.awaiting = false;
  };

  /** A key [keyStart, keyEnd) of a dict decoded by a plan other than ALL: refuse a duplicate, then pick how its value is decoded. */
  const shapedKey = (top: Frame, start: number, keyStart: number, keyEnd: number): void => {
    // keys in order (as BEP 3 writes them) cannot repeat: only once one comes out of order are they all remembered
    if (top.seen === undefined && top.lastKeyStart >= 0 && compareBytes(input, top.lastKeyStart, top.lastKeyEnd, keyStart, keyEnd) >= 0) {
      top.seen = keysAt(input, keyStarts, top.keyBase, keyTop);
      keyTop = top.keyBase;
    }
    if (top.seen === undefined) {
      // a stack shared by the open dicts (a dict's keys are read while no inner one is open)
      if (keyTop === keyStarts.length) {
        const grown = new Uint32Array(Math.max(64, keyTop * 2));
        grown.set(keyStarts);
        keyStarts = grown;
      }
      keyStarts[keyTop++] = start;
    } else {
      const key = input.toString('latin1', keyStart, keyEnd);
      if (top.seen.has(key)) throw new BencodeError('duplicate dict key', start);
      top.seen.add(key);
    }
    top.lastKeyStart = keyStart;
    top.lastKeyEnd = keyEnd;
    top.key = undefined;
    top.valuePlan = SKIP;
    if (top.plan instanceof DictShape) {
      for (const entry of top.plan.entries) {
        if (entry.bytes.length === keyEnd - keyStart && entry.bytes.compare(input, keyStart, keyEnd) === 0) {
          top.key = entry.key;
          top.valuePlan = entry.shape;
          break;
        }
      }
    }
    top.awaiting = true;
  };

  while (!rootDone) {
    if (pos >= bytes.length) throw new BencodeError('truncated input', pos);
    const c = bytes[pos]!;
    const top = stack[stack.length - 1];
    const wantKey = top !== undefined && top.kind === 'dict' && !top.awaiting;

    if (c === CH_E) {
      if (top === undefined) throw new BencodeError("unexpected 'e'", pos);
      if (top.kind === 'dict' && top.awaiting) throw new BencodeError('dict key without a value', pos);
      stack.pop();
      pos++;
      if (top.kind === 'dict') keyTop = top.keyBase;
      // a shaped list is kept while its reader reads: without the spare room pushing left (a 2-item list holds 17)
      attach(top.plan instanceof ListShape ? (top.value as BValue[]).slice() : top.value, top.start);
      continue;
    }
    if (wantKey && !isDigit(c)) throw new BencodeError('dict key is not a string', pos);
    if (++items > maxItems) throw new BencodeError(`more than ${maxItems} items`, pos);
    const start = pos;
    const plan: Plan = top === undefined ? rootPlan : top.plan === ALL || top.plan === SKIP ? top.plan : top.plan instanceof ListShape ? top.plan.item : top.valuePlan;

    if (isDigit(c)) {
      const len = readNumber(bytes, pos, false, 'string length');
      pos = len.pos;
      if (pos >= bytes.length) throw new BencodeError('truncated string length', pos);
      if (bytes[pos] !== CH_COLON) throw new BencodeError("string length not followed by ':'", pos);
      pos++;
      // checked against what remains BEFORE anything is allocated
      if (len.n > bytes.length - pos) throw new BencodeError(`string of ${len.n} bytes runs past the end`, start);
      const bodyStart = pos;
      pos += len.n;
      if (wantKey) {
        if (top.plan !== ALL) shapedKey(top, start, bodyStart, pos);
        else {
          const key = input.toString('latin1', bodyStart, pos);
          if ((top.value as BDict).has(key)) throw new BencodeError('duplicate dict key', start);
          top.key = key;
          top.awaiting = true;
        }
      } else if (plan === ALL) {
        attach(Buffer.from(input.subarray(bodyStart, pos)), start); // a copy: never a view into a caller's (maybe reused) buffer
      } else if (plan === SKIP) {
        attach(undefined, start);
      } else {
        attach(len.n === 0 ? EMPTY : input.subarray(bodyStart, pos), start); // a view: the shaped reader reads it and lets go
      }
    } else if (c === CH_I) {
      const num = readNumber(bytes, pos + 1, true, 'integer');
      pos = num.pos;
      if (pos >= bytes.length) throw new BencodeError('truncated integer', pos);
      if (bytes[pos] !== CH_E) throw new BencodeError("integer not terminated by 'e'", pos);
      pos++;
      attach(plan === SKIP ? undefined : num.n, start);
    } else if (c === CH_L || c === CH_D) {
      if (stack.length >= maxDepth) throw new BencodeError(`nesting deeper than ${maxDepth}`, pos);
      pos++;
      const isList = c === CH_L;
      // a container of the kind its shape reads is built by it; of another kind, built empty (its kind is what a reader sees)
      const own = plan === ALL || (isList ? plan instanceof ListShape : plan instanceof DictShape);
      const value = plan === SKIP ? undefined : isList ? [] : new Map<string, BValue>();
      stack.push({
        kind: isList ? 'list' : 'dict',
        start,
        value,
        plan: own ? plan : SKIP,
        awaiting: false,
        key: undefined,
        valuePlan: SKIP,
        lastKeyStart: -1,
        lastKeyEnd: -1,
        keyBase: keyTop,
        seen: undefined,
        count: 0,
      });
    } else {
      throw new BencodeError(`unexpected byte 0x${c.toString(16).padStart(2, '0')}`, pos);
    }
  }

  if (requireEnd && pos !== bytes.length) throw new BencodeError('trailing bytes after value', pos);
  return { value: root!, end: pos, spans };
}

/** Decode exactly one value; trailing bytes are an error. */
export function decode(bytes: Uint8Array, limits?: DecodeLimits): BValue {
  return decodeCore(bytes, limits, true, false).value;
}

/** Decode one value at the start of `bytes`; `end` is where it stopped (BEP 9 data follows). */
export function decodePrefix(bytes: Uint8Array, limits?: DecodeLimits): { value: BValue; end: number } {
  const r = decodeCore(bytes, limits, false, false);
  return { value: r.value, end: r.end };
}

/**
 * Decode exactly one value and record the raw byte span of every value of the
 * top-level dict (empty when the root is not a dict). The info hash is the SHA-1
 * of `bytes.subarray(span.start, span.end)` for key 'info'. With
 * `allowTrailingBytes`, whatever follows the value is ignored; `end` says where it stopped.
 * With a `shape`, only what it names is built (and only the spans of its top-level keys
 * are recorded); the rest is checked as strictly, and counts against the same limits.
 * Its byte strings are then views into `bytes`, for a reader that takes what it needs
 * and lets the result go: `bytes` must not change while the result is in use.
 */
export function decodeWithSpans(
  bytes: Uint8Array,
  limits?: DecodeLimits,
  opts: { allowTrailingBytes?: boolean; shape?: Shape } = {},
): { value: BValue; spans: ReadonlyMap<string, ByteSpan>; end: number } {
  const r = decodeCore(bytes, limits, opts.allowTrailingBytes !== true, true, opts.shape);
  return { value: r.value, spans: r.spans, end: r.end };
}

// ---------------------------------------------------------------- encoding

export type BEncodable =
  | Buffer
  | Uint8Array
  | string
  | number
  | readonly BEncodable[]
  | Map<string, BEncodable>
  | { readonly [key: string]: BEncodable | undefined };

/**
 * Encode a value. Dict keys are sorted as raw bytes. Map keys are raw bytes as
 * latin1 strings (so a decoded BDict re-encodes byte for byte); plain-object keys
 * and string values are UTF-8. Undefined object values are omitted.
 */
export function encode(value: BEncodable): Buffer {
  const out: Buffer[] = [];
  encodeInto(value, out);
  return Buffer.concat(out);
}

function encodeBytes(b: Uint8Array, out: Buffer[]): void {
  out.push(Buffer.from(`${b.length}:`, 'latin1'), Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

function encodeDict(entries: [Buffer, BEncodable][], out: Buffer[]): void {
  entries.sort((a, b) => Buffer.compare(a[0], b[0]));
  out.push(Buffer.from('d'));
  for (let i = 0; i < entries.length; i++) {
    const [key, v] = entries[i]!;
    if (i > 0 && key.equals(entries[i - 1]![0])) throw new TypeError('bencode: duplicate dict key');
    encodeBytes(key, out);
    encodeInto(v, out);
  }
  out.push(Buffer.from('e'));
}

function encodeInto(value: BEncodable, out: Buffer[]): void {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new TypeError(`bencode: cannot encode non-integer ${value}`);
    out.push(Buffer.from(`i${value}e`, 'latin1'));
  } else if (typeof value === 'string') {
    encodeBytes(Buffer.from(value, 'utf8'), out);
  } else if (value instanceof Uint8Array) {
    encodeBytes(value, out);
  } else if (Array.isArray(value)) {
    out.push(Buffer.from('l'));
    for (const item of value as readonly BEncodable[]) encodeInto(item, out);
    out.push(Buffer.from('e'));
  } else if (value instanceof Map) {
    const entries: [Buffer, BEncodable][] = [];
    for (const [k, v] of value) if (v !== undefined) entries.push([Buffer.from(k, 'latin1'), v]);
    encodeDict(entries, out);
  } else if (typeof value === 'object' && value !== null) {
    const entries: [Buffer, BEncodable][] = [];
    for (const [k, v] of Object.entries(value)) if (v !== undefined) entries.push([Buffer.from(k, 'utf8'), v]);
    encodeDict(entries, out);
  } else {
    throw new TypeError(`bencode: cannot encode ${typeof value}`);
  }
}

// ---------------------------------------------------------------- accessors

/** Builds the error thrown when key `key` of an untrusted dict is missing or of the wrong shape. */
export type ErrorFactory = (key: string, problem: string) => Error;

export function isDict(v: BValue | undefined): v is BDict {
  return v instanceof Map;
}
export function isList(v: BValue | undefined): v is BValue[] {
  return Array.isArray(v);
}
export function isBytes(v: BValue | undefined): v is Buffer {
  return Buffer.isBuffer(v);
}
export function isInt(v: BValue | undefined): v is number {
  return typeof v === 'number';
}

/** Strict UTF-8 decoding: undefined when the bytes are not valid UTF-8. */
export function utf8OrUndefined(b: Uint8Array): string | undefined {
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(b);
  } catch {
    return undefined;
  }
}

function getTyped<T extends BValue>(
  d: BDict,
  key: string,
  guard: (v: BValue | undefined) => v is T,
  type: string,
  fail: ErrorFactory | undefined,
): T | undefined {
  const v = d.get(key);
  if (v === undefined) return undefined;
  if (guard(v)) return v;
  if (fail) throw fail(key, `expected ${type}`);
  return undefined;
}

function required<T>(v: T | undefined, key: string, fail: ErrorFactory): T {
  if (v === undefined) throw fail(key, 'missing');
  return v;
}

/** Optional typed getters: undefined when absent; on a wrong type, throw fail(key, problem) if given, else undefined. */
export function getDict(d: BDict, key: string, fail?: ErrorFactory): BDict | undefined {
  return getTyped(d, key, isDict, 'a dictionary', fail);
}
export function getList(d: BDict, key: string, fail?: ErrorFactory): BValue[] | undefined {
  return getTyped(d, key, isList, 'a list', fail);
}
export function getBytes(d: BDict, key: string, fail?: ErrorFactory): Buffer | undefined {
  return getTyped(d, key, isBytes, 'a byte string', fail);
}
export function getInt(d: BDict, key: string, fail?: ErrorFactory): number | undefined {
  return getTyped(d, key, isInt, 'an integer', fail);
}

/** Required typed getters: throw fail(key, problem) when absent or of the wrong type. */
export function requireDict(d: BDict, key: string, fail: ErrorFactory): BDict {
  return required(getDict(d, key, fail), key, fail);
}
export function requireList(d: BDict, key: string, fail: ErrorFactory): BValue[] {
  return required(getList(d, key, fail), key, fail);
}
export function requireBytes(d: BDict, key: string, fail: ErrorFactory): Buffer {
  return required(getBytes(d, key, fail), key, fail);
}
export function requireInt(d: BDict, key: string, fail: ErrorFactory): number {
  return required(getInt(d, key, fail), key, fail);
}
