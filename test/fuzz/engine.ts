/**
 * A tiny seeded mutation fuzzer for tt's parsers (HARDENING.md "hostile input"): a
 * deterministic PRNG, byte mutators (bit flips, insert/delete, splice, bencode length
 * and integer tweaks, big-endian field tweaks, truncation, duplication) and runFuzz(),
 * which fails on an untyped exception, a slow call, a broken invariant or heap growth.
 */
import { setFlagsFromString, getHeapStatistics } from 'node:v8';
import { runInNewContext } from 'node:vm';

// ---------------------------------------------------------------- configuration

/** Seed used when TT_FUZZ_SEED is unset, so CI runs are identical. */
export const DEFAULT_SEED = 'tt-fuzz-1';
/** A single parser call slower than this is a hang (the brief's bound). */
export const DEFAULT_MAX_CALL_MS = 200;
/** A slow call is re-run this many times; it fails only if every run is slow (CI noise is not a hang). */
const SLOW_CALL_ATTEMPTS = 3;
/**
 * Largest heap + external growth one call may cause, beyond ALLOC_PER_INPUT_BYTE
 * per input byte. Parsers copy at most a few times their input; a call that
 * allocates tens of MiB for a small input believed a length field.
 */
export const MAX_CALL_ALLOC_BYTES = 32 * 1024 * 1024;
const ALLOC_PER_INPUT_BYTE = 64;
/**
 * Largest heap + external growth over a whole run, measured after a forced GC with
 * the engine's learned inputs released. Parsers are pure and keep nothing, so what
 * remains is V8 noise (compiled code, inline caches: well under 4 MiB here) or a
 * leak; a leak of even 1 KiB per call over a CI run of thousands of calls exceeds this.
 */
export const MAX_RUN_GROWTH_BYTES = 8 * 1024 * 1024;
/** Inputs that parsed successfully are kept (up to this many) as new mutation bases. */
const MAX_LEARNED_INPUTS = 256;
/** Longest hex dump put in a failure message, in input bytes; longer inputs are shown head..tail. */
const MAX_HEX_DUMP_BYTES = 16 * 1024;
/** Attempts the minimizer may make before reporting what it has. */
const MAX_SHRINK_ATTEMPTS = 400;

export interface FuzzConfig {
  readonly seed: string;
  /** Inputs per target, or undefined to use the target's CI default. */
  readonly iterations: number | undefined;
  /** When set, each target runs for this long instead of a fixed count. */
  readonly seconds: number | undefined;
}

function positiveEnv(name: string): number | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, got ${JSON.stringify(raw)}`);
  return n;
}

/** TT_FUZZ_SEED (any string), TT_FUZZ_ITERATIONS (inputs per target), TT_FUZZ_SECONDS (per target). */
export function fuzzConfig(): FuzzConfig {
  const iterations = positiveEnv('TT_FUZZ_ITERATIONS');
  return {
    seed: process.env['TT_FUZZ_SEED'] || DEFAULT_SEED,
    iterations: iterations === undefined ? undefined : Math.ceil(iterations),
    seconds: positiveEnv('TT_FUZZ_SECONDS'),
  };
}

// ---------------------------------------------------------------- PRNG

/** FNV-1a of a string: turns "seed/target" into a 32-bit PRNG seed. */
export function hashSeed(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** sfc32: small, fast, good enough for fuzzing; the same seed gives the same stream. */
export class Rng {
  #a: number;
  #b: number;
  #c: number;
  #d: number;
  constructor(seed: number) {
    this.#a = 0x9e3779b9;
    this.#b = 0x243f6a88;
    this.#c = 0xb7e15162;
    this.#d = seed >>> 0;
    for (let i = 0; i < 12; i++) this.u32();
  }
  u32(): number {
    const t = (((this.#a + this.#b) | 0) + this.#d) | 0;
    this.#d = (this.#d + 1) | 0;
    this.#a = this.#b ^ (this.#b >>> 9);
    this.#b = (this.#c + (this.#c << 3)) | 0;
    this.#c = (this.#c << 21) | (this.#c >>> 11);
    this.#c = (this.#c + t) | 0;
    return t >>> 0;
  }
  /** Uniform integer in [0, n). */
  int(n: number): number {
    return n <= 1 ? 0 : Math.floor((this.u32() / 4294967296) * n);
  }
  /** Uniform integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }
  chance(p: number): boolean {
    return this.u32() / 4294967296 < p;
  }
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('pick from an empty list');
    return items[this.int(items.length)]!;
  }
  bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) b[i] = this.u32() & 0xff;
    return b;
  }
  /** Random positive split sizes summing to `total` (for chunked stream decoding). */
  chunking(total: number): number[] {
    const sizes: number[] = [];
    let left = total;
    while (left > 0) {
      const style = this.int(4);
      const max = style === 0 ? 1 : style === 1 ? 8 : style === 2 ? 200 : left;
      const n = Math.min(left, this.range(1, Math.max(1, max)));
      sizes.push(n);
      left -= n;
    }
    return sizes;
  }
}

// ---------------------------------------------------------------- mutators

const INTERESTING_BYTES = [0x00, 0x01, 0x7f, 0x80, 0xff, 0x30, 0x39, 0x3a, 0x2d, 0x65, 0x69, 0x6c, 0x64, 0x25, 0x26, 0x3d, 0x2b];
const INTERESTING_U32 = [0, 1, 2, 0x7f, 0xff, 0x3fff, 0x4000, 0x4001, 0xffff, 0x10000, 0x100000, 0x100014, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff];
/** Bencode fragments and digit runs that stress lengths, nesting and integer rules. */
const TOKENS = [
  'e', 'l', 'd', 'le', 'de', 'i0e', 'i-0e', 'i01e', 'i-1e', 'ie', 'i9007199254740992e', 'i9007199254740991e',
  '0:', '1:', '4:spam', '99999999999:', '00:', '-1:', ':', 'lllllllllllllllllllllllllllllllllll', 'dddddddddddddd',
  '%', '%0', '%zz', '%00', '&', '=', '&&', '+', '%FF', 'xt=urn:btih:', '&tr=', 'dn=',
];
const HUGE_DIGITS = ['0', '00', '1', '9', '99', '4294967295', '4294967296', '9007199254740991', '9007199254740992', '99999999999999999999', '-1', '-0'];

export type Mutator = (rng: Rng, input: Buffer, corpus: readonly Buffer[]) => Buffer;

function insertAt(input: Buffer, at: number, piece: Uint8Array): Buffer {
  return Buffer.concat([input.subarray(0, at), piece, input.subarray(at)]);
}

const bitFlip: Mutator = (rng, input) => {
  if (input.length === 0) return rng.bytes(1);
  const out = Buffer.from(input);
  const flips = rng.range(1, 8);
  for (let i = 0; i < flips; i++) {
    const at = rng.int(out.length);
    out[at] = out[at]! ^ (1 << rng.int(8));
  }
  return out;
};

const setByte: Mutator = (rng, input) => {
  if (input.length === 0) return Buffer.from([rng.pick(INTERESTING_BYTES)]);
  const out = Buffer.from(input);
  out[rng.int(out.length)] = rng.chance(0.7) ? rng.pick(INTERESTING_BYTES) : rng.int(256);
  return out;
};

const insertBytes: Mutator = (rng, input) => {
  const piece = rng.chance(0.5) ? rng.bytes(rng.range(1, 16)) : Buffer.from(rng.pick(TOKENS), 'latin1');
  return insertAt(input, rng.int(input.length + 1), piece);
};

const deleteRange: Mutator = (rng, input) => {
  if (input.length === 0) return input;
  const at = rng.int(input.length);
  const n = rng.range(1, Math.min(input.length - at, rng.chance(0.8) ? 4 : 256));
  return Buffer.concat([input.subarray(0, at), input.subarray(at + n)]);
};

const splice: Mutator = (rng, input, corpus) => {
  const other = corpus.length > 0 ? rng.pick(corpus) : rng.bytes(32);
  const cut = rng.int(input.length + 1);
  const from = rng.int(other.length + 1);
  if (rng.chance(0.5)) return Buffer.concat([input.subarray(0, cut), other.subarray(from)]);
  const to = from + rng.int(other.length - from + 1);
  return insertAt(input, cut, other.subarray(from, to));
};

/** Replace a run of ASCII digits (a bencode string length or integer, a query count...). */
const digitTweak: Mutator = (rng, input) => {
  const runs: [number, number][] = [];
  for (let i = 0; i < input.length && runs.length < 4096; ) {
    if (input[i]! >= 0x30 && input[i]! <= 0x39) {
      const start = i;
      while (i < input.length && input[i]! >= 0x30 && input[i]! <= 0x39) i++;
      runs.push([start, i]);
    } else i++;
  }
  if (runs.length === 0) return insertBytes(rng, input, []);
  const [start, end] = rng.pick(runs);
  const n = Number(input.subarray(start, end).toString('latin1'));
  const choices = [String(n + 1), String(Math.max(0, n - 1)), String(n * 2), String(n + rng.range(2, 40)), rng.pick(HUGE_DIGITS), `0${n}`, ''];
  return Buffer.concat([input.subarray(0, start), Buffer.from(rng.pick(choices), 'latin1'), input.subarray(end)]);
};

/** Overwrite a big-endian 32- or 16-bit field (binary length prefixes, counts, ids). */
const fieldTweak: Mutator = (rng, input) => {
  if (input.length < 4) return setByte(rng, input, []);
  const out = Buffer.from(input);
  const at = rng.chance(0.5) ? rng.int(out.length - 3) & ~3 : rng.int(out.length - 3);
  const old = out.readUInt32BE(at);
  const value = rng.chance(0.7) ? rng.pick(INTERESTING_U32) : (old + rng.range(-4, 4)) >>> 0;
  if (rng.chance(0.25)) out.writeUInt16BE(value & 0xffff, at);
  else out.writeUInt32BE(value, at);
  return out;
};

const truncate: Mutator = (rng, input) => input.subarray(0, rng.int(input.length + 1));

const duplicateChunk: Mutator = (rng, input) => {
  if (input.length === 0) return input;
  const from = rng.int(input.length);
  const chunk = input.subarray(from, from + rng.range(1, Math.min(64, input.length - from)));
  const times = rng.chance(0.8) ? 1 : rng.range(2, 64);
  return insertAt(input, rng.int(input.length + 1), Buffer.concat(new Array<Buffer>(times).fill(chunk)));
};

export const MUTATORS: readonly Mutator[] = [
  bitFlip, setByte, insertBytes, deleteRange, splice, digitTweak, digitTweak, fieldTweak, truncate, duplicateChunk,
];

/** 1 to 4 stacked mutations of `base`, capped at `maxBytes`. */
export function mutate(rng: Rng, base: Buffer, corpus: readonly Buffer[], maxBytes: number): Buffer {
  let out = base;
  const n = rng.chance(0.6) ? 1 : rng.range(2, 4);
  for (let i = 0; i < n; i++) out = rng.pick(MUTATORS)(rng, out, corpus);
  return out.length > maxBytes ? out.subarray(0, maxBytes) : out;
}

// ---------------------------------------------------------------- the runner

// a forced GC makes the whole-run heap check meaningful; the flag can be set at run time
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
/** Two full GCs: the second finishes the first's (concurrent) freeing of Buffer memory, so the count is settled. */
function forceGc(): void {
  gc();
  gc();
}

type ErrorClass = abstract new (...args: never[]) => Error;

export interface FuzzTarget<T> {
  readonly name: string;
  /** Valid (and interesting invalid) inputs to mutate; read before the heap baseline. */
  readonly corpus: readonly Buffer[];
  /** Inputs tried in CI (TT_FUZZ_ITERATIONS / TT_FUZZ_SECONDS override). */
  readonly iterations: number;
  /** Calls the code under test. `seed` drives any randomness it needs (e.g. chunking) reproducibly. */
  run(input: Buffer, seed: number): T;
  /** The typed errors a rejection may be; anything else thrown is a bug. Empty: must never throw. */
  readonly errors: readonly ErrorClass[];
  /** Invariants of a successful result; throw (any Error) when one is broken. */
  check?(input: Buffer, result: T, seed: number): void;
  /** Longest mutated input, in bytes (default 64 KiB). */
  readonly maxInputBytes?: number;
  /** Share of inputs that are pure random bytes instead of mutations (default 0.1). */
  readonly randomShare?: number;
  /** Per-call time limit for `input` in ms (default DEFAULT_MAX_CALL_MS). */
  maxCallMs?(input: Buffer): number;
}

export interface FuzzStats {
  readonly iterations: number;
  /** Inputs the target accepted (returned a value). */
  readonly accepted: number;
  /** Inputs rejected with a typed error, by error name. */
  readonly rejected: ReadonlyMap<string, number>;
  readonly slowestMs: number;
  readonly heapGrowthBytes: number;
}

type Failure = { kind: 'untyped-error' | 'invariant' | 'slow' | 'memory'; detail: string };

function heapBytes(): number {
  const s = getHeapStatistics();
  return s.used_heap_size + s.external_memory;
}

function describeError(err: unknown): string {
  if (err instanceof Error) return `${err.name}: ${err.message}\n${(err.stack ?? '').split('\n').slice(1, 6).join('\n')}`;
  return `non-Error thrown: ${String(err)}`;
}

export function hexDump(input: Uint8Array): string {
  const b = Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  if (b.length <= MAX_HEX_DUMP_BYTES) return b.toString('hex');
  const half = MAX_HEX_DUMP_BYTES / 2;
  return `${b.subarray(0, half).toString('hex')}...(${b.length - MAX_HEX_DUMP_BYTES} bytes)...${b.subarray(b.length - half).toString('hex')}`;
}

/** One call under the target's rules: undefined when it behaved, else what went wrong. */
function probe<T>(target: FuzzTarget<T>, input: Buffer, seed: number, onResult?: (r: T | Error, ms: number) => void): Failure | undefined {
  const limitMs = target.maxCallMs?.(input) ?? DEFAULT_MAX_CALL_MS;
  const maxAlloc = MAX_CALL_ALLOC_BYTES + ALLOC_PER_INPUT_BYTE * input.length;
  let slowest = 0;
  for (let attempt = 0; attempt < SLOW_CALL_ATTEMPTS; attempt++) {
    const heapBefore = heapBytes();
    const t0 = performance.now();
    let result: T | Error;
    try {
      result = target.run(input, seed);
    } catch (err) {
      if (!target.errors.some((cls) => err instanceof cls)) return { kind: 'untyped-error', detail: describeError(err) };
      result = err as Error;
    }
    const ms = performance.now() - t0;
    const grown = heapBytes() - heapBefore; // result is still referenced here, so retained growth counts
    if (grown > maxAlloc) return { kind: 'memory', detail: `one call grew the heap by ${grown} bytes (limit ${maxAlloc})` };
    if (ms <= limitMs) {
      onResult?.(result, ms);
      if (!(result instanceof Error) && target.check) {
        try {
          target.check(input, result, seed);
        } catch (err) {
          return { kind: 'invariant', detail: describeError(err) };
        }
      }
      return undefined;
    }
    slowest = ms;
  }
  return { kind: 'slow', detail: `call took ${slowest.toFixed(1)} ms on each of ${SLOW_CALL_ATTEMPTS} tries (limit ${limitMs} ms)` };
}

/** Greedy, bounded minimizer: drop chunks while the same kind of failure persists. */
function shrink<T>(target: FuzzTarget<T>, input: Buffer, seed: number, kind: Failure['kind']): Buffer {
  if (kind === 'slow') return input; // re-running slow inputs hundreds of times costs too much
  let best = input;
  let attempts = 0;
  for (let size = Math.max(1, best.length >> 1); size >= 1 && attempts < MAX_SHRINK_ATTEMPTS; size >>= 1) {
    for (let at = 0; at + size <= best.length && attempts < MAX_SHRINK_ATTEMPTS; ) {
      const candidate = Buffer.concat([best.subarray(0, at), best.subarray(at + size)]);
      attempts++;
      if (probe(target, candidate, seed)?.kind === kind) best = candidate;
      else at += size;
    }
  }
  return best;
}

export class FuzzFailure extends Error {
  constructor(
    readonly target: string,
    readonly kind: Failure['kind'],
    readonly input: Buffer,
    message: string,
  ) {
    super(message);
    this.name = 'FuzzFailure';
  }
}

function fail<T>(target: FuzzTarget<T>, config: FuzzConfig, iteration: number, input: Buffer, seed: number, f: Failure): never {
  const small = shrink(target, input, seed, f.kind);
  const lines = [
    `fuzz target "${target.name}": ${f.kind} at iteration ${iteration} (TT_FUZZ_SEED=${JSON.stringify(config.seed)}, call seed ${seed})`,
    f.detail,
    `input (${input.length} bytes) hex: ${hexDump(input)}`,
  ];
  if (small.length < input.length) lines.push(`minimized (${small.length} bytes) hex: ${hexDump(small)}`);
  lines.push(`reproduce: TT_FUZZ_SEED=${JSON.stringify(config.seed)} npx vitest run test/fuzz -t ${JSON.stringify(target.name)}`);
  throw new FuzzFailure(target.name, f.kind, small, lines.join('\n'));
}

/**
 * Runs `target` over its corpus, then over mutated and random inputs, and throws a
 * FuzzFailure naming the seed, iteration and input hex at the first misbehaviour.
 */
export function runFuzz<T>(target: FuzzTarget<T>, config: FuzzConfig = fuzzConfig()): FuzzStats {
  const rng = new Rng(hashSeed(`${config.seed}/${target.name}`));
  const maxInputBytes = target.maxInputBytes ?? 64 * 1024;
  const randomShare = target.randomShare ?? 0.1;
  const corpus = target.corpus.map((b) => Buffer.from(b));
  const learned: Buffer[] = [];
  let accepted = 0;
  let slowestMs = 0;
  const rejected = new Map<string, number>();
  const record = (r: T | Error, ms: number): void => {
    slowestMs = Math.max(slowestMs, ms);
    if (r instanceof Error) rejected.set(r.name, (rejected.get(r.name) ?? 0) + 1);
    else accepted++;
  };

  forceGc();
  const baseline = heapBytes();
  const deadline = config.seconds === undefined ? Infinity : performance.now() + config.seconds * 1000;
  const iterations = config.seconds === undefined ? (config.iterations ?? target.iterations) : Infinity;

  let i = 0;
  for (; i < iterations && performance.now() < deadline; i++) {
    let input: Buffer;
    if (i < corpus.length) input = corpus[i]!;
    else if (rng.chance(randomShare)) input = rng.bytes(rng.int(rng.chance(0.9) ? 128 : 4096));
    else {
      const pool = learned.length > 0 && rng.chance(0.3) ? learned : corpus.length > 0 ? corpus : [Buffer.alloc(0)];
      input = mutate(rng, rng.pick(pool), corpus, maxInputBytes);
    }
    const seed = rng.u32();
    let acceptedThis = false;
    const failure = probe(target, input, seed, (r, ms) => {
      record(r, ms);
      acceptedThis = !(r instanceof Error);
    });
    if (failure) fail(target, config, i, input, seed, failure);
    if (acceptedThis && i >= corpus.length) {
      if (learned.length < MAX_LEARNED_INPUTS) learned.push(Buffer.from(input));
      else learned[rng.int(MAX_LEARNED_INPUTS)] = Buffer.from(input);
    }
  }

  learned.length = 0; // the engine's own memory must not count as the parser's
  forceGc();
  const heapGrowthBytes = heapBytes() - baseline;
  if (heapGrowthBytes > MAX_RUN_GROWTH_BYTES) {
    fail(target, config, i, Buffer.alloc(0), 0, {
      kind: 'memory',
      detail: `heap grew by ${heapGrowthBytes} bytes over ${i} calls (limit ${MAX_RUN_GROWTH_BYTES})`,
    });
  }
  return { iterations: i, accepted, rejected, slowestMs, heapGrowthBytes };
}

export type Outcome<T> = { ok: true; value: T } | { ok: false; error: Error };

/**
 * Runs `fn`, turning a typed rejection (one of `errors`) into a value so a target can
 * compare several calls; anything else is rethrown for runFuzz to report as a bug.
 */
export function attempt<T>(fn: () => T, errors: readonly ErrorClass[]): Outcome<T> {
  try {
    return { ok: true, value: fn() };
  } catch (err) {
    if (err instanceof Error && errors.some((cls) => err instanceof cls)) return { ok: false, error: err };
    throw err;
  }
}

/** Throws when `cond` is false: the invariant checks' assert (message says which invariant). */
export function invariant(cond: unknown, message: string): asserts cond {
  if (!cond) throw new Error(`invariant broken: ${message}`);
}
