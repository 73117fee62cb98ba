import { describe, expect, it } from 'vitest';
import { Bitfield } from '../../src/core/bitfield.js';
import { ProtocolError } from '../../src/core/errors.js';
import { BLOCK_SIZE } from '../../src/core/geometry.js';
import { encode } from '../../src/metainfo/bencode.js';
import { FrameError, MessageDecoder } from '../../src/wire/decoder.js';
import { type ExtendedHandshake, encodeExtendedHandshake, parseExtendedHandshake } from '../../src/wire/extension.js';
import { HANDSHAKE_LENGTH, checkHandshakePrefix, defaultReserved, encodeHandshake, parseHandshake, supportsExtensionProtocol, supportsFastExtension } from '../../src/wire/handshake.js';
import { encodeMessage, type Message } from '../../src/wire/messages.js';
import { METADATA_PIECE_BYTES, MAX_METADATA_BYTES, metadataPieceLength } from '../../src/metainfo/metadata.js';
import { encodeMetadataData, encodeMetadataReject, encodeMetadataRequest, parseMetadataMessage, type MetadataMessage } from '../../src/wire/ut-metadata.js';
import { Rng, attempt, invariant, runFuzz, type Outcome } from './engine.js';

const PIECE_COUNT = 21; // a 3-byte bitfield with 3 spare bits

function wireCorpus(): Buffer[] {
  const bf = new Bitfield(PIECE_COUNT);
  for (const i of [0, 5, 20]) bf.set(i);
  const block = Buffer.alloc(BLOCK_SIZE, 0x5a);
  const messages: Message[] = [
    { type: 'bitfield', bitfield: bf },
    { type: 'keep-alive' },
    { type: 'unchoke' },
    { type: 'interested' },
    { type: 'have', index: 20 },
    { type: 'request', index: 1, begin: 16384, length: BLOCK_SIZE },
    { type: 'piece', index: 2, begin: 0, block: block.subarray(0, 100) },
    { type: 'cancel', index: 1, begin: 16384, length: BLOCK_SIZE },
    { type: 'port', port: 6881 },
    { type: 'suggest', index: 3 },
    { type: 'have-all' },
    { type: 'reject', index: 4, begin: 0, length: 1 },
    { type: 'allowed-fast', index: 7 },
    { type: 'extended', id: 0, payload: encodeExtendedHandshake({ m: { ut_metadata: 2 }, v: 'tt', reqq: 250, p: 6881 }) },
    { type: 'unknown', id: 99, length: 3 },
  ];
  const frames = messages.map(encodeMessage);
  return [
    Buffer.concat(frames),
    ...frames,
    encodeMessage({ type: 'piece', index: 0, begin: 0, block }),
    Buffer.concat([encodeMessage({ type: 'have-none' }), encodeMessage({ type: 'choke' }), encodeMessage({ type: 'not-interested' })]),
  ];
}

interface Decoded {
  messages: Message[];
  /** The ProtocolError message, when the stream was refused. */
  error: string | undefined;
  /** Bytes left buffered when the stream was accepted so far. */
  buffered: number;
}

/** Feed `input` in chunks of `sizes` (each copied: the decoder may keep views into chunks). */
function decodeStream(input: Buffer, sizes: readonly number[]): Decoded {
  const decoder = new MessageDecoder({ pieceCount: PIECE_COUNT });
  const messages: Message[] = [];
  let at = 0;
  for (const n of sizes) {
    const chunk = Buffer.from(input.subarray(at, at + n));
    at += n;
    try {
      messages.push(...decoder.push(chunk));
    } catch (err) {
      if (!(err instanceof FrameError)) throw err;
      messages.push(...err.decoded);
      // a failed decoder stays failed
      const again = attempt(() => decoder.push(Buffer.from([0, 0, 0, 0])), [ProtocolError]);
      invariant(!again.ok && again.error.message === err.message, 'a failed decoder keeps throwing the same ProtocolError');
      return { messages, error: err.message, buffered: 0 };
    }
  }
  return { messages, error: undefined, buffered: decoder.bufferedBytes };
}

function checkFrames(input: Buffer, d: Decoded): void {
  let pos = 0;
  for (const m of d.messages) {
    invariant(pos + 4 <= input.length, 'a message only from bytes received');
    const length = input.readUInt32BE(pos);
    const frame = input.subarray(pos, pos + 4 + length);
    if (m.type === 'unknown') invariant(m.id === frame[4] && m.length === length - 1, 'unknown frame skipped whole');
    else invariant(encodeMessage(m).equals(frame), `${m.type} re-encodes to the bytes it came from`);
    if ('index' in m) invariant(m.index < PIECE_COUNT, `${m.type} index in range`);
    if (m.type === 'request') invariant(m.length >= 1 && m.length <= BLOCK_SIZE, 'request length 1..16 KiB');
    if (m.type === 'piece') invariant(m.block.length >= 1 && m.block.length <= BLOCK_SIZE, 'block 1..16 KiB');
    pos += frame.length;
  }
  if (d.error === undefined) invariant(pos + d.buffered === input.length, 'every byte is decoded or buffered');
}

describe('fuzz: peer wire', () => {
  it('MessageDecoder: any chunking gives the same messages, which re-encode to the input, or a ProtocolError', () => {
    const seen = { ok: 0, refused: 0 };
    runFuzz<{ chunked: Decoded; whole: Decoded }>({
      name: 'MessageDecoder',
      corpus: wireCorpus(),
      iterations: 15_000,
      errors: [ProtocolError],
      maxInputBytes: 40 * 1024,
      run: (input, seed) => {
        const chunked = decodeStream(input, new Rng(seed).chunking(input.length));
        const whole = decodeStream(input, input.length === 0 ? [] : [input.length]);
        seen[whole.error === undefined ? 'ok' : 'refused']++;
        return { chunked, whole };
      },
      check: (input, { chunked, whole }) => {
        invariant(chunked.error === whole.error, `chunking changes the verdict: ${chunked.error} vs ${whole.error}`);
        invariant(chunked.buffered === whole.buffered, 'chunking changes what is buffered');
        const frames = (d: Decoded): string => Buffer.concat(d.messages.map(encodeMessage)).toString('hex');
        invariant(frames(chunked) === frames(whole), 'chunking changes the messages');
        checkFrames(input, whole);
      },
    });
    expect(seen.ok).toBeGreaterThan(1000);
    expect(seen.refused).toBeGreaterThan(1000);
  });

  it('parseHandshake and checkHandshakePrefix agree; a parsed handshake re-encodes to its 68 bytes', () => {
    const infoHash = Buffer.alloc(20, 0xaa);
    const peerId = Buffer.from('-TT0001-000000000000');
    const hs = encodeHandshake(infoHash, peerId);
    runFuzz<{ parsed: Outcome<ReturnType<typeof parseHandshake>>; prefix: Outcome<void> }>({
      name: 'handshake',
      corpus: [hs, Buffer.concat([hs, encodeMessage({ type: 'have-all' })]), encodeHandshake(infoHash, peerId, Buffer.alloc(8, 0xff)), hs.subarray(0, 30)],
      iterations: 10_000,
      errors: [ProtocolError],
      maxInputBytes: 256,
      run: (input) => ({
        parsed: attempt(() => parseHandshake(input), [ProtocolError]),
        prefix: attempt(() => checkHandshakePrefix(input), [ProtocolError]),
      }),
      check: (input, { parsed, prefix }) => {
        if (input.length < HANDSHAKE_LENGTH) invariant(!parsed.ok, 'no handshake from fewer than 68 bytes');
        else invariant(parsed.ok === prefix.ok, 'a whole handshake parses exactly when its prefix is right');
        if (!parsed.ok) return;
        const { reserved, infoHash: ih, peerId: pid } = parsed.value;
        invariant(encodeHandshake(ih, pid, reserved).equals(input.subarray(0, HANDSHAKE_LENGTH)), 're-encodes to the first 68 bytes');
        invariant(typeof supportsExtensionProtocol(reserved) === 'boolean' && typeof supportsFastExtension(reserved) === 'boolean', 'reserved bits readable');
      },
    });
    expect(supportsFastExtension(defaultReserved())).toBe(true);
  });

  it('parseExtendedHandshake returns bounded fields or throws ProtocolError', () => {
    const stats = runFuzz<ExtendedHandshake>({
      name: 'parseExtendedHandshake',
      corpus: [
        encodeExtendedHandshake({ m: { ut_metadata: 2, ut_pex: 1 }, v: 'libtorrent 2.0', reqq: 500, p: 6881 }),
        encode({ m: { lt_donthave: 7, ut_holepunch: 0 }, metadata_size: 31235, yourip: Buffer.from([127, 0, 0, 1]), v: 'Transmission 4.0 \u2713', e: 1 }),
        encode({ m: {}, yourip: Buffer.alloc(16, 1), complete_ago: -1, upload_only: 1 }),
      ],
      iterations: 15_000,
      errors: [ProtocolError],
      run: (input) => parseExtendedHandshake(input),
      check: (_input, h) => {
        for (const id of h.m.values()) invariant(Number.isInteger(id) && id >= 0 && id <= 255, 'extension ids are one byte');
        // eslint-disable-next-line no-control-regex
        invariant(h.v === undefined || (h.v.length <= 64 && !/[\u0000-\u001f\u007f-\u009f]/.test(h.v)), 'client name bounded, no controls');
        invariant(h.p === undefined || (h.p >= 1 && h.p <= 65535), 'port in range');
        invariant(h.reqq === undefined || (Number.isSafeInteger(h.reqq) && h.reqq >= 1), 'reqq positive');
        invariant(h.metadataSize === undefined || (h.metadataSize >= 1 && h.metadataSize <= 10 * 1024 * 1024), 'metadata size bounded');
        invariant(h.yourip === undefined || h.yourip.length === 4 || h.yourip.length === 16, 'yourip is an address');
      },
    });
    expect(stats.accepted).toBeGreaterThan(1000);
    expect(stats.rejected.get('ProtocolError')).toBeGreaterThan(1000);
  });

  it('parseMetadataMessage (BEP 9): a message within bounds whose data is exactly its piece, nothing, or a ProtocolError', () => {
    const metadata = Buffer.alloc(METADATA_PIECE_BYTES + 300, 0x61);
    const stats = runFuzz<MetadataMessage | undefined>({
      name: 'parseMetadataMessage',
      corpus: [encodeMetadataRequest(0), encodeMetadataReject(5), encodeMetadataData(metadata, 0), encodeMetadataData(metadata, 1)],
      iterations: 15_000,
      maxInputBytes: 2 * METADATA_PIECE_BYTES,
      errors: [ProtocolError],
      run: (input) => parseMetadataMessage(input),
      check: (_input, m) => {
        if (m === undefined) return;
        invariant(Number.isInteger(m.piece) && m.piece >= 0 && m.piece * METADATA_PIECE_BYTES < MAX_METADATA_BYTES, 'piece in range');
        if (m.type !== 'data') return;
        invariant(m.totalSize >= 1 && m.totalSize <= MAX_METADATA_BYTES, 'total_size bounded');
        invariant(m.data.length === metadataPieceLength(m.totalSize, m.piece) && m.data.length > 0, 'data is exactly its piece');
      },
    });
    expect(stats.accepted).toBeGreaterThan(1000);
    expect(stats.rejected.get('ProtocolError')).toBeGreaterThan(1000);
  });
});
