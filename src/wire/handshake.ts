/**
 * The BEP 3 handshake: <pstrlen=19><pstr="BitTorrent protocol"><reserved:8><info_hash:20><peer_id:20>,
 * and the reserved bits tt reads and sets (BEP 10 extension protocol, BEP 6 fast
 * extension). Pure; checking the info hash and our own peer id is peer/'s job.
 */
import { ProtocolError } from '../core/errors.js';

export const PROTOCOL_STRING = 'BitTorrent protocol';
export const HANDSHAKE_LENGTH = 68;
export const RESERVED_LENGTH = 8;
export const INFO_HASH_LENGTH = 20;
export const PEER_ID_LENGTH = 20;

/** The first 20 bytes every handshake must start with: <19>"BitTorrent protocol". */
const HANDSHAKE_PREFIX = Buffer.concat([Buffer.from([PROTOCOL_STRING.length]), Buffer.from(PROTOCOL_STRING, 'latin1')]);

/** BEP 10: reserved byte 5, bit 0x10. */
const EXTENSION_PROTOCOL_BYTE = 5;
const EXTENSION_PROTOCOL_BIT = 0x10;
/** BEP 6: reserved byte 7, bit 0x04. */
const FAST_EXTENSION_BYTE = 7;
const FAST_EXTENSION_BIT = 0x04;

/** BEP 5: reserved byte 7, bit 0x01 (the peer runs a DHT node and sends PORT). */
const DHT_BYTE = 7;
const DHT_BIT = 0x01;

export interface Handshake {
  reserved: Buffer;
  infoHash: Buffer;
  peerId: Buffer;
}

/** Our reserved bytes: the extension protocol bit, the fast extension bit, and with `dht` the DHT bit. */
export function defaultReserved(dht = false): Buffer {
  const reserved = Buffer.alloc(RESERVED_LENGTH);
  reserved[EXTENSION_PROTOCOL_BYTE] = EXTENSION_PROTOCOL_BIT;
  reserved[FAST_EXTENSION_BYTE] = FAST_EXTENSION_BIT | (dht ? DHT_BIT : 0);
  return reserved;
}

export function supportsDht(reserved: Buffer): boolean {
  return ((reserved[DHT_BYTE] ?? 0) & DHT_BIT) !== 0;
}

export function supportsExtensionProtocol(reserved: Buffer): boolean {
  return ((reserved[EXTENSION_PROTOCOL_BYTE] ?? 0) & EXTENSION_PROTOCOL_BIT) !== 0;
}

export function supportsFastExtension(reserved: Buffer): boolean {
  return ((reserved[FAST_EXTENSION_BYTE] ?? 0) & FAST_EXTENSION_BIT) !== 0;
}

export function encodeHandshake(infoHash: Buffer, peerId: Buffer, reserved: Buffer = defaultReserved()): Buffer {
  if (infoHash.length !== INFO_HASH_LENGTH) throw new RangeError('info hash must be 20 bytes');
  if (peerId.length !== PEER_ID_LENGTH) throw new RangeError('peer id must be 20 bytes');
  if (reserved.length !== RESERVED_LENGTH) throw new RangeError('reserved must be 8 bytes');
  return Buffer.concat([HANDSHAKE_PREFIX, reserved, infoHash, peerId], HANDSHAKE_LENGTH);
}

/**
 * Fails fast on a partial handshake: throws ProtocolError as soon as the bytes
 * received so far (any length) stop matching <19>"BitTorrent protocol", so a
 * connection need not wait for 68 bytes of an HTTP request or garbage.
 */
export function checkHandshakePrefix(received: Buffer): void {
  if (received.length > 0 && received[0] !== PROTOCOL_STRING.length) {
    throw new ProtocolError(`handshake pstrlen is ${received[0]}, expected ${PROTOCOL_STRING.length}`);
  }
  const n = Math.min(received.length, HANDSHAKE_PREFIX.length);
  if (!received.subarray(0, n).equals(HANDSHAKE_PREFIX.subarray(0, n))) {
    throw new ProtocolError('handshake protocol string is not "BitTorrent protocol"');
  }
}

/**
 * Parses the first 68 bytes of `bytes` (anything after them is the caller's: the
 * peer's first messages). The returned fields are copies.
 */
export function parseHandshake(bytes: Buffer): Handshake {
  if (bytes.length < HANDSHAKE_LENGTH) {
    throw new ProtocolError(`handshake is ${bytes.length} bytes, expected ${HANDSHAKE_LENGTH}`);
  }
  checkHandshakePrefix(bytes.subarray(0, HANDSHAKE_PREFIX.length));
  const at = HANDSHAKE_PREFIX.length;
  return {
    reserved: Buffer.from(bytes.subarray(at, at + RESERVED_LENGTH)),
    infoHash: Buffer.from(bytes.subarray(at + RESERVED_LENGTH, at + RESERVED_LENGTH + INFO_HASH_LENGTH)),
    peerId: Buffer.from(bytes.subarray(at + RESERVED_LENGTH + INFO_HASH_LENGTH, HANDSHAKE_LENGTH)),
  };
}
