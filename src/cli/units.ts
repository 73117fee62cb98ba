/**
 * Parsing of command-line quantities: sizes and rates ("10M", "512KiB/s"),
 * durations ("90s", "1h30m"), ratios, ports and host:port peers. Each parser
 * throws commander's InvalidArgumentError so bad values become usage errors.
 */
import { InvalidArgumentError } from 'commander';
import { parseHostPort, type PeerAddress } from '../core/peer-address.js';
import { parseFileNumbers, type FileNumberRanges } from '../metainfo/selection.js';

const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** "1048576", "1M", "1MiB", "1.5G", "512k/s" -> bytes (binary multiples). */
export function parseSize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?(?:\/s)?\s*$/i.exec(text);
  if (!m) throw new InvalidArgumentError(`'${text}' is not a size (examples: 500K, 10M, 1.5G)`);
  const value = Number(m[1]) * SIZE_UNITS[(m[2] ?? '').toLowerCase()]!;
  if (!Number.isFinite(value) || value > Number.MAX_SAFE_INTEGER) throw new InvalidArgumentError(`'${text}' is too large`);
  return Math.floor(value);
}

/** "90", "90s", "10m", "1h30m", "2d" -> seconds. */
export function parseDuration(text: string): number {
  const trimmed = text.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Number(trimmed);
  const re = /(\d+(?:\.\d+)?)([smhd])/gy;
  const unit: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };
  let total = 0;
  let end = 0;
  for (let m = re.exec(trimmed); m; m = re.exec(trimmed)) {
    total += Number(m[1]) * unit[m[2]!]!;
    end = re.lastIndex;
  }
  if (end === 0 || end !== trimmed.length) throw new InvalidArgumentError(`'${text}' is not a duration (examples: 90s, 10m, 1h30m)`);
  return total;
}

export function parseRatio(text: string): number {
  if (!/^\s*\d+(\.\d+)?\s*$/.test(text)) throw new InvalidArgumentError(`'${text}' is not a ratio (a number >= 0)`);
  const v = Number(text);
  if (!Number.isFinite(v) || v < 0) throw new InvalidArgumentError(`'${text}' is not a ratio (a number >= 0)`);
  return v;
}

export function parsePort(text: string): number {
  if (!/^\s*\d+\s*$/.test(text)) throw new InvalidArgumentError(`'${text}' is not a port (0-65535)`);
  const v = Number(text);
  if (!Number.isInteger(v) || v < 0 || v > 65535) throw new InvalidArgumentError(`'${text}' is not a port (0-65535)`);
  return v;
}

export function parseCount(text: string): number {
  if (!/^\s*\d+\s*$/.test(text)) throw new InvalidArgumentError(`'${text}' is not a positive whole number`);
  const v = Number(text);
  if (!Number.isInteger(v) || v < 1 || v > 100_000) throw new InvalidArgumentError(`'${text}' is not a positive whole number`);
  return v;
}

/** "host:port" or "[v6]:port", repeatable. */
export function parsePeer(text: string, previous: PeerAddress[] = []): PeerAddress[] {
  const address = parseHostPort(text);
  if (!address) {
    const why = /:\d+$/.test(text) ? 'has no valid port' : 'is not host:port';
    throw new InvalidArgumentError(`'${text}' ${why}`);
  }
  return [...previous, address];
}

/**
 * `--bind ADDR`: an address, never empty. Node listens on every interface for
 * an empty host, so `--bind "$ADDR"` with $ADDR unset would expose the client
 * (or tracker) on all of them, the opposite of what was asked.
 */
export function parseBindAddress(text: string): string {
  if (text.trim() === '') {
    throw new InvalidArgumentError("an empty address would listen on every interface: give one (0.0.0.0 for all of them, 127.0.0.1 for this machine only)");
  }
  return text;
}

/** "2", "1,3-5" -> file number ranges (checked against the torrent once it is known). */
export function parseFileList(text: string): FileNumberRanges {
  try {
    return parseFileNumbers(text);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}
