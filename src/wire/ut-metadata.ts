/**
 * BEP 9 ut_metadata messages (the payload of an extended message whose id the
 * receiver chose for "ut_metadata"): request, data and reject of one 16 KiB
 * piece of the info dictionary. Encoders and a strict bounded parser (anything
 * malformed is a ProtocolError); piece geometry is in metainfo/metadata.ts. Pure.
 */
import { ProtocolError, errorMessage } from '../core/errors.js';
import { decodePrefix, encode, getInt, isDict } from '../metainfo/bencode.js';
import { METADATA_PIECE_BYTES, MAX_METADATA_BYTES, metadataPieceCount, metadataPieceLength } from '../metainfo/metadata.js';

export const UT_METADATA = 'ut_metadata';
/** The extended message id we ask peers to use for ut_metadata (BEP 10: our choice, 1..255). */
export const OUR_UT_METADATA_ID = 2;
/** The dictionary in front of a data message is a few dozen bytes; this bounds what we decode. */
const MAX_HEADER_BYTES = 1024;
const HEADER_LIMITS = { maxBytes: MAX_HEADER_BYTES, maxDepth: 4, maxItems: 64 };

export type MetadataMessage =
  | { readonly type: 'request'; readonly piece: number }
  | { readonly type: 'data'; readonly piece: number; readonly totalSize: number; readonly data: Buffer }
  | { readonly type: 'reject'; readonly piece: number };

const MSG_TYPE = { request: 0, data: 1, reject: 2 } as const;

export function encodeMetadataRequest(piece: number): Buffer {
  return encode({ msg_type: MSG_TYPE.request, piece });
}

export function encodeMetadataReject(piece: number): Buffer {
  return encode({ msg_type: MSG_TYPE.reject, piece });
}

/** A data message carrying piece `piece` of `metadata` (the whole raw info dictionary). */
export function encodeMetadataData(metadata: Buffer, piece: number): Buffer {
  const start = piece * METADATA_PIECE_BYTES;
  const head = encode({ msg_type: MSG_TYPE.data, piece, total_size: metadata.length });
  return Buffer.concat([head, metadata.subarray(start, start + METADATA_PIECE_BYTES)]);
}

/**
 * Parse a ut_metadata payload. Unknown msg_type values are a ProtocolError
 * only when they could not be skipped: BEP 9 says to ignore them, and we do
 * (undefined). `data` is a view into `payload`: copy it to keep it.
 */
export function parseMetadataMessage(payload: Buffer): MetadataMessage | undefined {
  let head;
  try {
    head = decodePrefix(payload.subarray(0, MAX_HEADER_BYTES), HEADER_LIMITS);
  } catch (err) {
    throw new ProtocolError(`bad ut_metadata message: ${errorMessage(err)}`);
  }
  const dict = head.value;
  if (!isDict(dict)) throw new ProtocolError('bad ut_metadata message: not a dictionary');
  const msgType = getInt(dict, 'msg_type');
  const piece = getInt(dict, 'piece');
  if (msgType === undefined) throw new ProtocolError('bad ut_metadata message: no msg_type');
  if (msgType !== MSG_TYPE.request && msgType !== MSG_TYPE.data && msgType !== MSG_TYPE.reject) return undefined;
  if (piece === undefined || piece < 0 || piece >= metadataPieceCount(MAX_METADATA_BYTES)) {
    throw new ProtocolError('bad ut_metadata message: piece missing or out of range');
  }
  if (msgType === MSG_TYPE.request) return { type: 'request', piece };
  if (msgType === MSG_TYPE.reject) return { type: 'reject', piece };
  const totalSize = getInt(dict, 'total_size');
  if (totalSize === undefined || totalSize < 1 || totalSize > MAX_METADATA_BYTES) {
    throw new ProtocolError('bad ut_metadata data: total_size missing or out of range');
  }
  if (piece >= metadataPieceCount(totalSize)) throw new ProtocolError(`bad ut_metadata data: piece ${piece} beyond total_size ${totalSize}`);
  const data = payload.subarray(head.end);
  if (data.length !== metadataPieceLength(totalSize, piece)) {
    throw new ProtocolError(`bad ut_metadata data: piece ${piece} is ${data.length} bytes, expected ${metadataPieceLength(totalSize, piece)}`);
  }
  return { type: 'data', piece, totalSize, data };
}
