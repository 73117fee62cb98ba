import { describe, expect, it } from 'vitest';
import {
  BencodeError,
  DiskError,
  EXIT_CODES,
  MetainfoError,
  ProtocolError,
  TrackerError,
  TtError,
  errorMessage,
  type ErrorCode,
} from '../../../src/core/errors.js';

/** Every ErrorCode, spelled out so the compiler checks the list (satisfies on a Record). */
const ALL_CODES = Object.keys({
  USAGE: 0,
  INPUT: 0,
  BENCODE: 0,
  METAINFO: 0,
  PROTOCOL: 0,
  TRACKER: 0,
  NO_PEERS: 0,
  DISK: 0,
  INCOMPLETE: 0,
  INTERRUPTED: 0,
  INTERNAL: 0,
} satisfies Record<ErrorCode, 0>) as ErrorCode[];

describe('EXIT_CODES', () => {
  it('maps every ErrorCode to an integer exit code 1..255', () => {
    expect(Object.keys(EXIT_CODES).sort()).toEqual([...ALL_CODES].sort());
    for (const code of ALL_CODES) {
      const exit = EXIT_CODES[code];
      expect(Number.isInteger(exit), code).toBe(true);
      expect(exit, code).toBeGreaterThanOrEqual(1);
      expect(exit, code).toBeLessThanOrEqual(255);
    }
  });

  it('holds the documented codes', () => {
    expect(EXIT_CODES.USAGE).toBe(2);
    expect(EXIT_CODES.INPUT).toBe(3);
    expect(EXIT_CODES.BENCODE).toBe(4);
    expect(EXIT_CODES.METAINFO).toBe(4);
    expect(EXIT_CODES.NO_PEERS).toBe(5);
    expect(EXIT_CODES.DISK).toBe(6);
    expect(EXIT_CODES.INCOMPLETE).toBe(7);
    expect(EXIT_CODES.TRACKER).toBe(8);
    expect(EXIT_CODES.INTERRUPTED).toBe(130);
    expect(EXIT_CODES.INTERNAL).toBe(1);
    const documented = new Set(Object.values(EXIT_CODES));
    for (const n of [1, 2, 3, 4, 5, 6, 7, 8, 130]) expect(documented.has(n), String(n)).toBe(true);
  });
});

describe('error classes', () => {
  it('carry their code, name and details', () => {
    const b = new BencodeError('unexpected end', 17);
    expect(b).toBeInstanceOf(TtError);
    expect(b.code).toBe('BENCODE');
    expect(b.offset).toBe(17);
    expect(b.message).toBe('unexpected end at byte 17');
    expect(b.name).toBe('BencodeError');

    const m = new MetainfoError('info.piece length', 'must be positive');
    expect(m.code).toBe('METAINFO');
    expect(m.field).toBe('info.piece length');
    expect(m.message).toContain('info.piece length');

    expect(new ProtocolError('x').code).toBe('PROTOCOL');
    expect(new TrackerError('x').code).toBe('TRACKER');

    const cause = Object.assign(new Error('no space'), { code: 'ENOSPC' });
    const d = new DiskError('write failed', cause);
    expect(d.code).toBe('DISK');
    expect(d.syscallCode).toBe('ENOSPC');
    expect(d.cause).toBe(cause);
    expect(new DiskError('no cause').syscallCode).toBeUndefined();
  });

  it('errorMessage reads an Error or stringifies anything else', () => {
    expect(errorMessage(new Error('boom'))).toBe('boom');
    expect(errorMessage('plain')).toBe('plain');
    expect(errorMessage(42)).toBe('42');
  });
});
