/**
 * The BEP 10 extended handshake (the payload of extended message id 0): what we
 * advertise and a tolerant, bounded parse of what a peer advertises. Unknown keys
 * and wrongly typed known keys are ignored; bytes that are not a bencoded dict are
 * a ProtocolError. Individual extensions (ut_metadata, ut_pex...) live elsewhere.
 */
import { ProtocolError, errorMessage } from '../core/errors.js';
import { decode, encode, getBytes, getDict, getInt, isDict, type BEncodable } from '../metainfo/bencode.js';
import { MAX_METADATA_BYTES } from '../metainfo/metadata.js';

/** Extended message id 0 is the extended handshake (BEP 10). */
export const EXTENDED_HANDSHAKE_ID = 0;
/** Largest extended handshake we parse, in bytes (real ones are a few hundred). */
export const MAX_EXTENDED_HANDSHAKE_BYTES = 64 * 1024;
/** Bencode limits for a peer's extended handshake. */
const HANDSHAKE_DECODE_LIMITS = { maxBytes: MAX_EXTENDED_HANDSHAKE_BYTES, maxDepth: 16, maxItems: 10_000 };
/** Longest client name kept from `v`, in characters. */
const MAX_CLIENT_NAME_CHARS = 64;
/** Largest `reqq` taken at face value (callers clamp further to their own policy). */
const MAX_REQQ = 2 ** 31 - 1;
/** An extended message id is one byte; 0 in `m` means "disabled" (BEP 10). */
const MAX_EXTENSION_ID = 255;

export interface ExtendedHandshake {
  /** Extension name -> the id the peer wants for it; 0 means the peer disabled it. */
  m: Map<string, number>;
  /** Client name and version, control characters replaced by '?'. */
  v?: string;
  /** How many outstanding requests the peer accepts. */
  reqq?: number;
  /** The peer's listen port. */
  p?: number;
  /** BEP 9: size of the info dictionary in bytes. */
  metadataSize?: number;
  /** Our address as the peer sees it: 4 (IPv4) or 16 (IPv6) bytes. */
  yourip?: Buffer;
}

/** The payload of an extended message with id 0 (frame it with encodeExtended(0, ...)). */
export function encodeExtendedHandshake(h: { m?: Record<string, number>; v?: string; reqq?: number; p?: number; metadataSize?: number }): Buffer {
  const dict: Record<string, BEncodable> = { m: h.m ?? {} };
  if (h.metadataSize !== undefined) dict['metadata_size'] = h.metadataSize;
  if (h.v !== undefined) dict['v'] = h.v;
  if (h.reqq !== undefined) dict['reqq'] = h.reqq;
  if (h.p !== undefined) dict['p'] = h.p;
  return encode(dict);
}

function intInRange(v: number | undefined, min: number, max: number): number | undefined {
  return v !== undefined && v >= min && v <= max ? v : undefined;
}

export function parseExtendedHandshake(payload: Buffer): ExtendedHandshake {
  let root;
  try {
    root = decode(payload, HANDSHAKE_DECODE_LIMITS);
  } catch (err) {
    throw new ProtocolError(`bad extended handshake: ${errorMessage(err)}`);
  }
  if (!isDict(root)) throw new ProtocolError('bad extended handshake: not a dictionary');

  const m = new Map<string, number>();
  for (const [name, id] of getDict(root, 'm') ?? []) {
    if (typeof id === 'number' && id >= 0 && id <= MAX_EXTENSION_ID) m.set(name, id);
  }
  const out: ExtendedHandshake = { m };
  const v = getBytes(root, 'v');
  if (v !== undefined) {
    // eslint-disable-next-line no-control-regex
    out.v = v.toString('utf8').slice(0, MAX_CLIENT_NAME_CHARS).replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
  }
  const reqq = intInRange(getInt(root, 'reqq'), 1, MAX_REQQ);
  if (reqq !== undefined) out.reqq = reqq;
  const p = intInRange(getInt(root, 'p'), 1, 65535);
  if (p !== undefined) out.p = p;
  const metadataSize = intInRange(getInt(root, 'metadata_size'), 1, MAX_METADATA_BYTES);
  if (metadataSize !== undefined) out.metadataSize = metadataSize;
  const yourip = getBytes(root, 'yourip');
  // a copy: the payload may be a view into a read buffer that is reused (peer/connection.ts)
  if (yourip !== undefined && (yourip.length === 4 || yourip.length === 16)) out.yourip = Buffer.from(yourip);
  return out;
}
