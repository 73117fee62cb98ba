import { describe, expect, it } from 'vitest';
import { Bitfield } from '../../../src/core/bitfield.js';
import { ProtocolError } from '../../../src/core/errors.js';
import { BLOCK_SIZE } from '../../../src/core/geometry.js';
import { DEFAULT_MAX_MESSAGE_LENGTH, FrameError, MessageDecoder } from '../../../src/wire/decoder.js';
import { MessageId, encodeMessage, type Message } from '../../../src/wire/messages.js';
import { mulberry32 } from '../../helpers/prng.js';

const PIECE_COUNT = 21; // 3 bitfield bytes, 3 spare bits

const prng = mulberry32;

function patterned(length: number, seed: number): Buffer {
  const b = Buffer.alloc(length);
  for (let i = 0; i < length; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

function mixedStream(): Message[] {
  const bf = new Bitfield(PIECE_COUNT);
  for (const i of [0, 3, 7, 8, 20]) bf.set(i);
  return [
    { type: 'bitfield', bitfield: bf },
    { type: 'keep-alive' },
    { type: 'unchoke' },
    { type: 'interested' },
    { type: 'have', index: 20 },
    { type: 'unknown', id: 200, length: 5 },
    { type: 'request', index: 1, begin: 0, length: BLOCK_SIZE },
    { type: 'piece', index: 2, begin: 16384, block: patterned(3000, 1) },
    { type: 'keep-alive' },
    { type: 'extended', id: 0, payload: Buffer.from('d1:md11:ut_metadatai2eee') },
    { type: 'cancel', index: 1, begin: 0, length: BLOCK_SIZE },
    { type: 'port', port: 51413 },
    { type: 'suggest', index: 4 },
    { type: 'have-all' },
    { type: 'have-none' },
    { type: 'reject', index: 5, begin: 16384, length: 1 },
    { type: 'allowed-fast', index: 6 },
    { type: 'piece', index: 20, begin: 0, block: patterned(17, 2) },
    { type: 'unknown', id: 21, length: 0 },
    { type: 'choke' },
    { type: 'not-interested' },
  ];
}

const STREAM_MESSAGES = mixedStream();
const STREAM = Buffer.concat(STREAM_MESSAGES.map(encodeMessage));

function reencode(messages: Message[]): Buffer {
  return Buffer.concat(messages.map(encodeMessage));
}

function feed(chunks: Buffer[], limits = { pieceCount: PIECE_COUNT }): Message[] {
  const decoder = new MessageDecoder(limits);
  const out: Message[] = [];
  for (const c of chunks) out.push(...decoder.push(c));
  expect(decoder.bufferedBytes).toBe(0);
  return out;
}

/** Copies, so no test relies on decoded views staying valid by accident. */
function copyChunks(chunks: Buffer[]): Buffer[] {
  return chunks.map((c) => Buffer.from(c));
}

describe('MessageDecoder streaming', () => {
  it('decodes the whole stream in one push', () => {
    const out = feed([STREAM]);
    expect(out.map((m) => m.type)).toEqual(STREAM_MESSAGES.map((m) => m.type));
    expect(reencode(out).equals(STREAM)).toBe(true);
  });

  it('decodes the same messages when split in two at every offset', () => {
    for (let at = 0; at <= STREAM.length; at++) {
      const out = feed(copyChunks([STREAM.subarray(0, at), STREAM.subarray(at)]));
      expect(out.length, `split at ${at}`).toBe(STREAM_MESSAGES.length);
      expect(reencode(out).equals(STREAM), `split at ${at}`).toBe(true);
    }
  });

  it('decodes the same messages fed one byte at a time', () => {
    const chunks: Buffer[] = [];
    for (let i = 0; i < STREAM.length; i++) chunks.push(STREAM.subarray(i, i + 1));
    const out = feed(copyChunks(chunks));
    expect(reencode(out).equals(STREAM)).toBe(true);
  });

  it('decodes the same messages in random chunkings (fixed seed)', () => {
    const random = prng(0x5eed);
    for (let run = 0; run < 300; run++) {
      const chunks: Buffer[] = [];
      let pos = 0;
      // mix tiny chunks (gathered into the tail store) with large ones (listed as views)
      const maxChunk = run % 3 === 0 ? 8 : run % 3 === 1 ? 1500 : 5000;
      while (pos < STREAM.length) {
        const n = 1 + Math.floor(random() * maxChunk);
        chunks.push(STREAM.subarray(pos, pos + n));
        pos += n;
      }
      const out = feed(copyChunks(chunks));
      expect(reencode(out).equals(STREAM), `run ${run}`).toBe(true);
    }
  });

  it('keeps a partial frame and reports it in bufferedBytes', () => {
    const decoder = new MessageDecoder({ pieceCount: PIECE_COUNT });
    const frame = encodeMessage({ type: 'have', index: 3 });
    expect(decoder.push(frame.subarray(0, 6))).toEqual([]);
    expect(decoder.bufferedBytes).toBe(6);
    expect(decoder.push(frame.subarray(6))).toEqual([{ type: 'have', index: 3 }]);
    expect(decoder.bufferedBytes).toBe(0);
  });

  it('decodes pieces straddling 64 KiB chunks intact', () => {
    const blocks = Array.from({ length: 12 }, (_, i) => patterned(BLOCK_SIZE, i));
    const bytes = Buffer.concat(blocks.map((block, i) => encodeMessage({ type: 'piece', index: i, begin: 0, block })));
    const chunks: Buffer[] = [];
    for (let pos = 0; pos < bytes.length; pos += 65536) chunks.push(bytes.subarray(pos, pos + 65536));
    const out = feed(chunks, { pieceCount: 12 });
    expect(out).toHaveLength(12);
    out.forEach((m, i) => {
      expect(m.type).toBe('piece');
      if (m.type === 'piece') expect(m.block.equals(blocks[i]!)).toBe(true);
    });
  });
});

/** Frame with an arbitrary length prefix, id and payload. */
function raw(length: number, id?: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(4);
  head.writeUInt32BE(length >>> 0);
  return Buffer.concat([head, id === undefined ? Buffer.alloc(0) : Buffer.from([id]), payload]);
}

function rejects(bytes: Buffer, pattern: RegExp, pieceCount = PIECE_COUNT): void {
  const decoder = new MessageDecoder({ pieceCount });
  expect(() => decoder.push(bytes)).toThrow(ProtocolError);
  expect(() => decoder.push(Buffer.alloc(0))).toThrow(pattern); // stays failed, same reason
}

describe('MessageDecoder over a reused read buffer', () => {
  it('detach() copies an incomplete frame out, so overwriting the buffer cannot corrupt it', () => {
    const block = Buffer.alloc(BLOCK_SIZE);
    for (let i = 0; i < block.length; i++) block[i] = (i * 31) & 0xff;
    const first = encodeMessage({ type: 'piece', index: 1, begin: 0, block });
    const second = encodeMessage({ type: 'piece', index: 1, begin: BLOCK_SIZE, block });
    const wire = Buffer.concat([first, second]);
    const shared = Buffer.alloc(64 * 1024);
    const d = new MessageDecoder({ pieceCount: 4 });
    // read 1: the first frame and half of the second
    const cut = first.length + 5000;
    wire.copy(shared, 0, 0, cut);
    const got1 = d.push(shared.subarray(0, cut));
    expect(got1).toHaveLength(1);
    expect(got1[0]!.type === 'piece' && got1[0]!.block.equals(block)).toBe(true);
    d.detach(shared.buffer);
    shared.fill(0xee); // the next read overwrites the buffer
    // read 2: the rest of the second frame, at the start of the same buffer
    wire.copy(shared, 0, cut);
    const got2 = d.push(shared.subarray(0, wire.length - cut));
    expect(got2).toHaveLength(1);
    const m = got2[0]!;
    expect(m.type === 'piece' && m.begin === BLOCK_SIZE && m.block.equals(block)).toBe(true);
    expect(d.bufferedBytes).toBe(0);
  });

  it('random chunkings through one reused buffer decode the same stream (each push re-encoded at once, then the buffer trashed)', () => {
    const random = prng(0xd7ac4);
    const shared = Buffer.alloc(8192);
    for (let run = 0; run < 300; run++) {
      const d = new MessageDecoder({ pieceCount: PIECE_COUNT });
      const encoded: Buffer[] = [];
      const maxChunk = run % 3 === 0 ? 8 : run % 3 === 1 ? 1500 : 8192;
      for (let pos = 0; pos < STREAM.length; ) {
        const n = Math.min(1 + Math.floor(random() * maxChunk), STREAM.length - pos, shared.length);
        STREAM.copy(shared, 0, pos, pos + n);
        // handlers see views into the read buffer: use them before the next read, as the session does
        for (const m of d.push(shared.subarray(0, n))) encoded.push(encodeMessage(m));
        d.detach(shared.buffer);
        shared.fill(random() * 256); // the next read overwrites everything
        pos += n;
      }
      expect(d.bufferedBytes).toBe(0);
      expect(Buffer.concat(encoded).equals(STREAM), `run ${run}`).toBe(true);
    }
  });

  it('detach() leaves chunks on other buffers alone and keeps a partly consumed head in place', () => {
    const d = new MessageDecoder({ pieceCount: 4 });
    const shared = Buffer.alloc(4096);
    const frames = Buffer.concat([encodeMessage({ type: 'have', index: 2 }), encodeMessage({ type: 'extended', id: 0, payload: Buffer.alloc(3000, 7) })]);
    frames.copy(shared, 0, 0, 2000);
    expect(d.push(shared.subarray(0, 2000))).toEqual([{ type: 'have', index: 2 }]);
    d.detach(shared.buffer);
    shared.fill(0);
    const rest = Buffer.from(frames.subarray(2000)); // an ordinary chunk, not in the shared buffer
    const got = d.push(rest);
    expect(got).toHaveLength(1);
    expect(got[0]!.type === 'extended' && got[0]!.payload.equals(Buffer.alloc(3000, 7))).toBe(true);
  });
});

describe('MessageDecoder hostile frames', () => {
  it('rejects a length prefix of 2^32-1 as soon as the 4 bytes arrive', () => {
    const decoder = new MessageDecoder({ pieceCount: PIECE_COUNT });
    expect(decoder.push(Buffer.from([0xff, 0xff, 0xff]))).toEqual([]);
    expect(() => decoder.push(Buffer.from([0xff]))).toThrow(/message too long/);
  });

  it('accepts the default cap exactly and rejects one byte more, before buffering payload', () => {
    const atCap = new MessageDecoder({ pieceCount: PIECE_COUNT });
    expect(atCap.push(raw(DEFAULT_MAX_MESSAGE_LENGTH, 99))).toEqual([]);
    expect(atCap.bufferedBytes).toBe(5);
    expect(() => new MessageDecoder({ pieceCount: PIECE_COUNT }).push(raw(DEFAULT_MAX_MESSAGE_LENGTH + 1))).toThrow(/message too long/);
  });

  it('honours a custom maxMessageLength', () => {
    const decoder = new MessageDecoder({ pieceCount: PIECE_COUNT, maxMessageLength: 100 });
    expect(decoder.push(raw(100, 99, Buffer.alloc(99)))).toEqual([{ type: 'unknown', id: 99, length: 99 }]);
    expect(() => decoder.push(raw(101))).toThrow(/message too long/);
  });

  it('rejects every fixed-size message with a wrong size, from its header alone', () => {
    const fixed: [number, number][] = [
      [MessageId.choke, 1],
      [MessageId.unchoke, 1],
      [MessageId.interested, 1],
      [MessageId.notInterested, 1],
      [MessageId.have, 5],
      [MessageId.request, 13],
      [MessageId.cancel, 13],
      [MessageId.port, 3],
      [MessageId.suggest, 5],
      [MessageId.haveAll, 1],
      [MessageId.haveNone, 1],
      [MessageId.reject, 13],
      [MessageId.allowedFast, 5],
    ];
    for (const [id, size] of fixed) {
      for (const wrong of [size - 1, size + 1, 1 << 20]) {
        if (wrong === 0) continue; // a zero length is a keep-alive, not this id
        const decoder = new MessageDecoder({ pieceCount: PIECE_COUNT });
        // only the prefix and the id byte: the size is judged before any payload is buffered
        expect(() => decoder.push(raw(wrong, id)), `id ${id} length ${wrong}`).toThrow(/has length/);
      }
    }
  });

  it('rejects a bitfield of the wrong length', () => {
    rejects(raw(1 + 2, MessageId.bitfield, Buffer.alloc(2)), /bitfield is 2 bytes, expected 3/);
    rejects(raw(1 + 4, MessageId.bitfield, Buffer.alloc(4)), /bitfield is 4 bytes/);
    rejects(raw(1, MessageId.bitfield), /bitfield is 0 bytes/);
  });

  it('rejects a bitfield with spare bits set, accepts the same without them', () => {
    rejects(raw(4, MessageId.bitfield, Buffer.from([0xff, 0xff, 0xfc])), /spare bits/);
    const ok = new MessageDecoder({ pieceCount: PIECE_COUNT }).push(raw(4, MessageId.bitfield, Buffer.from([0xff, 0xff, 0xf8])));
    expect(ok[0]?.type === 'bitfield' && ok[0].bitfield.complete).toBe(true);
  });

  it('rejects an index out of range in every message that carries one', () => {
    const u32 = (...v: number[]) => Buffer.concat(v.map((n) => raw(n).subarray(0, 4)));
    const cases: [number, Buffer][] = [
      [MessageId.have, u32(PIECE_COUNT)],
      [MessageId.request, u32(PIECE_COUNT, 0, 1)],
      [MessageId.piece, Buffer.concat([u32(PIECE_COUNT, 0), Buffer.from('x')])],
      [MessageId.cancel, u32(0xffffffff, 0, 1)],
      [MessageId.suggest, u32(PIECE_COUNT)],
      [MessageId.reject, u32(PIECE_COUNT + 7, 0, 1)],
      [MessageId.allowedFast, u32(PIECE_COUNT)],
    ];
    for (const [id, payload] of cases) rejects(raw(1 + payload.length, id, payload), /out of range/);
    // the last index is fine
    expect(new MessageDecoder({ pieceCount: PIECE_COUNT }).push(raw(5, MessageId.have, u32(PIECE_COUNT - 1)))).toEqual([
      { type: 'have', index: PIECE_COUNT - 1 },
    ]);
  });

  it('rejects a request of zero length or over 16 KiB, accepts 1 byte and exactly 16 KiB', () => {
    const req = (length: number) => encodeMessage({ type: 'request', index: 0, begin: 0, length });
    rejects(req(0), /zero length/);
    rejects(req(BLOCK_SIZE + 1), /request too long/);
    rejects(req(0xffffffff), /request too long/);
    const d = new MessageDecoder({ pieceCount: PIECE_COUNT });
    expect(d.push(Buffer.concat([req(1), req(BLOCK_SIZE)])).map((m) => m.type === 'request' && m.length)).toEqual([1, BLOCK_SIZE]);
  });

  it('rejects a piece too short to hold a block, and a block over 16 KiB from its header', () => {
    rejects(raw(9, MessageId.piece, Buffer.alloc(8)), /piece message too short/);
    rejects(raw(9 + BLOCK_SIZE + 1, MessageId.piece), /piece block too long/);
    const big = new MessageDecoder({ pieceCount: PIECE_COUNT, maxBlockLength: 2 * BLOCK_SIZE });
    expect(big.push(raw(9 + BLOCK_SIZE + 1, MessageId.piece))).toEqual([]);
  });

  it('rejects an extended message without its extended id', () => {
    rejects(raw(1, MessageId.extended), /extended message without/);
  });

  it('skips an unknown id whole, even split byte by byte, and decodes what follows', () => {
    const bytes = Buffer.concat([raw(1 + 300, 77, patterned(300, 9)), encodeMessage({ type: 'have', index: 2 })]);
    const decoder = new MessageDecoder({ pieceCount: PIECE_COUNT });
    const out: Message[] = [];
    for (let i = 0; i < bytes.length; i++) out.push(...decoder.push(bytes.subarray(i, i + 1)));
    expect(out).toEqual([
      { type: 'unknown', id: 77, length: 300 },
      { type: 'have', index: 2 },
    ]);
  });

  it('fails on the first bad frame of a chunk, handing over the good frames before it', () => {
    const decoder = new MessageDecoder({ pieceCount: PIECE_COUNT });
    const good = encodeMessage({ type: 'unchoke' });
    const after = encodeMessage({ type: 'interested' });
    let caught: unknown;
    try {
      decoder.push(Buffer.concat([good, raw(5, MessageId.have, raw(999).subarray(0, 4)), after]));
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(FrameError);
    expect(caught).toBeInstanceOf(ProtocolError);
    expect((caught as FrameError).message).toMatch(/have index 999 out of range/);
    expect((caught as FrameError).decoded).toEqual([{ type: 'unchoke' }]);
    expect(decoder.bufferedBytes).toBe(0);
    expect(() => decoder.push(after)).toThrow(/have index 999 out of range/);
  });
});

describe('MessageDecoder lenient mode (test peers only)', () => {
  it('takes the bitfield size from its bytes and skips range checks, but still checks frame sizes', () => {
    const decoder = new MessageDecoder({ pieceCount: 0, lenient: true });
    const out = decoder.push(
      Buffer.concat([raw(3, MessageId.bitfield, Buffer.from([0xff, 0x01])), encodeMessage({ type: 'request', index: 5000, begin: 0, length: 1 << 20 })]),
    );
    expect(out[0]?.type === 'bitfield' && out[0].bitfield.size).toBe(16);
    expect(out[1]).toEqual({ type: 'request', index: 5000, begin: 0, length: 1 << 20 });
    expect(() => decoder.push(raw(2, MessageId.choke))).toThrow(/has length/);
  });
});
