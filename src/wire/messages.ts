/**
 * Peer wire message types and their encoders: BEP 3 core messages, BEP 6 fast
 * extension messages and the BEP 10 extended envelope. Pure: values in, bytes out.
 * Decoding (and every limit on received frames) lives in decoder.ts.
 */
import type { Bitfield } from '../core/bitfield.js';

/** Every frame starts with a 4-byte big-endian length of what follows (BEP 3). */
export const LENGTH_PREFIX_BYTES = 4;

/** The id byte of each message (BEP 3; 13-17 BEP 6; 20 BEP 10). */
export const MessageId = {
  choke: 0,
  unchoke: 1,
  interested: 2,
  notInterested: 3,
  have: 4,
  bitfield: 5,
  request: 6,
  piece: 7,
  cancel: 8,
  port: 9,
  suggest: 13,
  haveAll: 14,
  haveNone: 15,
  reject: 16,
  allowedFast: 17,
  extended: 20,
} as const;

export type Message =
  /** keep-alive: <len=0000> (BEP 3) */
  | { type: 'keep-alive' }
  /** choke: <len=0001><id=0> (BEP 3) */
  | { type: 'choke' }
  /** unchoke: <len=0001><id=1> (BEP 3) */
  | { type: 'unchoke' }
  /** interested: <len=0001><id=2> (BEP 3) */
  | { type: 'interested' }
  /** not interested: <len=0001><id=3> (BEP 3) */
  | { type: 'not-interested' }
  /** have: <len=0005><id=4><index> (BEP 3) */
  | { type: 'have'; index: number }
  /** bitfield: <len=0001+X><id=5><bitfield> (BEP 3); validated: exact length, spare bits clear */
  | { type: 'bitfield'; bitfield: Bitfield }
  /** request: <len=0013><id=6><index><begin><length> (BEP 3) */
  | { type: 'request'; index: number; begin: number; length: number }
  /**
   * piece: <len=0009+X><id=7><index><begin><block> (BEP 3). A decoded block may be
   * a view into the chunk given to MessageDecoder.push (see decoder.ts).
   */
  | { type: 'piece'; index: number; begin: number; block: Buffer }
  /** cancel: <len=0013><id=8><index><begin><length> (BEP 3) */
  | { type: 'cancel'; index: number; begin: number; length: number }
  /** port: <len=0003><id=9><listen-port:2> (BEP 5, DHT port) */
  | { type: 'port'; port: number }
  /** suggest piece: <len=0005><id=13><index> (BEP 6) */
  | { type: 'suggest'; index: number }
  /** have all: <len=0001><id=14> (BEP 6) */
  | { type: 'have-all' }
  /** have none: <len=0001><id=15> (BEP 6) */
  | { type: 'have-none' }
  /** reject request: <len=0013><id=16><index><begin><length> (BEP 6) */
  | { type: 'reject'; index: number; begin: number; length: number }
  /** allowed fast: <len=0005><id=17><index> (BEP 6) */
  | { type: 'allowed-fast'; index: number }
  /** extended: <len=0002+X><id=20><extended id:1><payload> (BEP 10); id 0 is the extended handshake */
  | { type: 'extended'; id: number; payload: Buffer }
  /** any other id: <len=0001+length><id><length bytes>; skipped by the decoder, not fatal */
  | { type: 'unknown'; id: number; length: number };

export type MessageType = Message['type'];

/** A frame with its length prefix and id written, and `payloadLength` bytes left to fill. */
function frame(id: number, payloadLength: number): Buffer {
  const buf = Buffer.allocUnsafe(LENGTH_PREFIX_BYTES + 1 + payloadLength);
  buf.writeUInt32BE(1 + payloadLength, 0);
  buf.writeUInt8(id, 4);
  return buf;
}

function encodeIndexMessage(id: number, index: number): Buffer {
  const buf = frame(id, 4);
  buf.writeUInt32BE(index, 5);
  return buf;
}

/** request / cancel / reject share one layout: <len=0013><id><index><begin><length>. */
function encodeBlockRef(id: number, index: number, begin: number, length: number): Buffer {
  const buf = Buffer.allocUnsafe(BLOCK_REF_FRAME_BYTES);
  writeBlockRef(buf, 0, id, index, begin, length);
  return buf;
}

const BLOCK_REF_FRAME_BYTES = LENGTH_PREFIX_BYTES + 13;

function writeBlockRef(buf: Buffer, at: number, id: number, index: number, begin: number, length: number): void {
  buf.writeUInt32BE(13, at);
  buf[at + 4] = id;
  buf.writeUInt32BE(index, at + 5);
  buf.writeUInt32BE(begin, at + 9);
  buf.writeUInt32BE(length, at + 13);
}

/** Several requests as one buffer (one write instead of one per request); 17 bytes each. */
export function encodeRequests(blocks: readonly { index: number; begin: number; length: number }[]): Buffer {
  const buf = Buffer.allocUnsafe(blocks.length * BLOCK_REF_FRAME_BYTES);
  let at = 0;
  for (const b of blocks) {
    writeBlockRef(buf, at, MessageId.request, b.index, b.begin, b.length);
    at += BLOCK_REF_FRAME_BYTES;
  }
  return buf;
}

/** Constant frames. Shared: never write into them. */
export const KEEP_ALIVE: Buffer = Buffer.alloc(LENGTH_PREFIX_BYTES);
export const CHOKE: Buffer = frame(MessageId.choke, 0);
export const UNCHOKE: Buffer = frame(MessageId.unchoke, 0);
export const INTERESTED: Buffer = frame(MessageId.interested, 0);
export const NOT_INTERESTED: Buffer = frame(MessageId.notInterested, 0);
export const HAVE_ALL: Buffer = frame(MessageId.haveAll, 0);
export const HAVE_NONE: Buffer = frame(MessageId.haveNone, 0);

/** request: <len=0013><id=6><index><begin><length> (BEP 3); 17 bytes. */
export function encodeRequest(index: number, begin: number, length: number): Buffer {
  return encodeBlockRef(MessageId.request, index, begin, length);
}

/** cancel: <len=0013><id=8><index><begin><length> (BEP 3); 17 bytes. */
export function encodeCancel(index: number, begin: number, length: number): Buffer {
  return encodeBlockRef(MessageId.cancel, index, begin, length);
}

/** reject request: <len=0013><id=16><index><begin><length> (BEP 6); 17 bytes. */
export function encodeReject(index: number, begin: number, length: number): Buffer {
  return encodeBlockRef(MessageId.reject, index, begin, length);
}

/** have: <len=0005><id=4><index> (BEP 3); 9 bytes. */
export function encodeHave(index: number): Buffer {
  return encodeIndexMessage(MessageId.have, index);
}

/**
 * The 13-byte head of a piece message, <len=0009+X><id=7><index><begin>; the
 * `blockLength` bytes of the block follow as a separate write (writev, no copy).
 */
export function encodePieceHeader(index: number, begin: number, blockLength: number): Buffer {
  const buf = Buffer.allocUnsafe(13);
  buf.writeUInt32BE(9 + blockLength, 0);
  buf[4] = MessageId.piece;
  buf.writeUInt32BE(index, 5);
  buf.writeUInt32BE(begin, 9);
  return buf;
}

/** extended: <len=0002+X><id=20><extended id><payload> (BEP 10). */
export function encodeExtended(id: number, payload: Uint8Array): Buffer {
  const buf = frame(MessageId.extended, 1 + payload.length);
  buf.writeUInt8(id, 5);
  buf.set(payload, 6);
  return buf;
}

/** Encode any message as one frame (the hot paths have their own encoders above). */
export function encodeMessage(m: Message): Buffer {
  switch (m.type) {
    case 'keep-alive':
      return Buffer.from(KEEP_ALIVE);
    case 'choke':
      return Buffer.from(CHOKE);
    case 'unchoke':
      return Buffer.from(UNCHOKE);
    case 'interested':
      return Buffer.from(INTERESTED);
    case 'not-interested':
      return Buffer.from(NOT_INTERESTED);
    case 'have':
      return encodeHave(m.index);
    case 'bitfield': {
      const buf = frame(MessageId.bitfield, m.bitfield.bytes.length);
      buf.set(m.bitfield.bytes, 5);
      return buf;
    }
    case 'request':
      return encodeRequest(m.index, m.begin, m.length);
    case 'piece':
      return Buffer.concat([encodePieceHeader(m.index, m.begin, m.block.length), m.block]);
    case 'cancel':
      return encodeCancel(m.index, m.begin, m.length);
    case 'port': {
      const buf = frame(MessageId.port, 2);
      buf.writeUInt16BE(m.port, 5);
      return buf;
    }
    case 'suggest':
      return encodeIndexMessage(MessageId.suggest, m.index);
    case 'have-all':
      return Buffer.from(HAVE_ALL);
    case 'have-none':
      return Buffer.from(HAVE_NONE);
    case 'reject':
      return encodeReject(m.index, m.begin, m.length);
    case 'allowed-fast':
      return encodeIndexMessage(MessageId.allowedFast, m.index);
    case 'extended':
      return encodeExtended(m.id, m.payload);
    case 'unknown': {
      const buf = frame(m.id, m.length);
      buf.fill(0, 5);
      return buf;
    }
    default: {
      const never: never = m;
      throw new TypeError(`cannot encode message ${JSON.stringify(never)}`);
    }
  }
}
