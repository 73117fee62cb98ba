/**
 * Strict, bounded bencode (BEP 3): an iterative decoder no input can hang, crash or
 * exhaust (depth, item, size and length limits; canonical safe integers only), the
 * raw byte spans of top-level dict values (for the info hash), an encoder, and small
 * typed accessors for untrusted dicts. Knows nothing about torrents.
 * Bytes after the value are an error (tracker replies, KRPC, PEX, BEP 10 all decode
 * with decode()), except where the caller asks: decodePrefix (BEP 9, data follows)
 * and decodeWithSpans with `allowTrailingBytes` (a .torrent file: libtorrent ignores
 * what follows its dictionary).
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

interface ListFrame {
  readonly kind: 'list';
  readonly start: number;
  readonly value: BValue[];
}
interface DictFrame {
  readonly kind: 'dict';
  readonly start: number;
  readonly value: BDict;
  /** The key read and waiting for its value, or undefined when a key is expected next. */
  key: string | undefined;
}
type Frame = ListFrame | DictFrame;

interface DecodeResult {
  value: BValue;
  end: number;
  spans: Map<string, ByteSpan>;
}

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

function decodeCore(bytes: Uint8Array, limits: DecodeLimits | undefined, requireEnd: boolean, recordSpans: boolean): DecodeResult {
  const maxDepth = limits?.maxDepth ?? DEFAULT_MAX_DEPTH;
  const maxItems = limits?.maxItems ?? DEFAULT_MAX_ITEMS;
  const maxBytes = limits?.maxBytes ?? DEFAULT_MAX_BYTES;
  if (bytes.length > maxBytes) throw new BencodeError(`input larger than ${maxBytes} bytes`, maxBytes);
  if (bytes.length === 0) throw new BencodeError('empty input', 0);

  const stack: Frame[] = [];
  const spans = new Map<string, ByteSpan>();
  let items = 0;
  let pos = 0;
  let root: BValue | undefined;
  let rootDone = false;

  /** Attach a finished value spanning [start, pos) to its parent, or make it the root. */
  const attach = (value: BValue, start: number): void => {
    const parent = stack[stack.length - 1];
    if (parent === undefined) {
      root = value;
      rootDone = true;
      return;
    }
    if (parent.kind === 'list') {
      parent.value.push(value);
      return;
    }
    const key = parent.key!;
    parent.value.set(key, value);
    parent.key = undefined;
    if (recordSpans && stack.length === 1) spans.set(key, { start, end: pos });
  };

  while (!rootDone) {
    if (pos >= bytes.length) throw new BencodeError('truncated input', pos);
    const c = bytes[pos]!;
    const top = stack[stack.length - 1];
    const wantKey = top !== undefined && top.kind === 'dict' && top.key === undefined;

    if (c === CH_E) {
      if (top === undefined) throw new BencodeError("unexpected 'e'", pos);
      if (top.kind === 'dict' && top.key !== undefined) throw new BencodeError('dict key without a value', pos);
      stack.pop();
      pos++;
      attach(top.value, top.start);
      continue;
    }
    if (wantKey && !isDigit(c)) throw new BencodeError('dict key is not a string', pos);
    if (++items > maxItems) throw new BencodeError(`more than ${maxItems} items`, pos);
    const start = pos;

    if (isDigit(c)) {
      const len = readNumber(bytes, pos, false, 'string length');
      pos = len.pos;
      if (pos >= bytes.length) throw new BencodeError('truncated string length', pos);
      if (bytes[pos] !== CH_COLON) throw new BencodeError("string length not followed by ':'", pos);
      pos++;
      // checked against what remains BEFORE anything is allocated
      if (len.n > bytes.length - pos) throw new BencodeError(`string of ${len.n} bytes runs past the end`, start);
      const body = bytes.subarray(pos, pos + len.n);
      pos += len.n;
      if (wantKey) {
        const key = Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('latin1');
        if (top.value.has(key)) throw new BencodeError('duplicate dict key', start);
        top.key = key;
      } else {
        attach(Buffer.from(body), start); // a copy: never a view into a caller's (maybe reused) buffer
      }
    } else if (c === CH_I) {
      const num = readNumber(bytes, pos + 1, true, 'integer');
      pos = num.pos;
      if (pos >= bytes.length) throw new BencodeError('truncated integer', pos);
      if (bytes[pos] !== CH_E) throw new BencodeError("integer not terminated by 'e'", pos);
      pos++;
      attach(num.n, start);
    } else if (c === CH_L || c === CH_D) {
      if (stack.length >= maxDepth) throw new BencodeError(`nesting deeper than ${maxDepth}`, pos);
      pos++;
      stack.push(c === CH_L ? { kind: 'list', start, value: [] } : { kind: 'dict', start, value: new Map(), key: undefined });
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
 */
export function decodeWithSpans(
  bytes: Uint8Array,
  limits?: DecodeLimits,
  opts: { allowTrailingBytes?: boolean } = {},
): { value: BValue; spans: ReadonlyMap<string, ByteSpan>; end: number } {
  const r = decodeCore(bytes, limits, opts.allowTrailingBytes !== true, true);
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
