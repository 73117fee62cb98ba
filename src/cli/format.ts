/**
 * Human-readable sizes, rates and durations, and the one sanitizer every string
 * from a torrent, tracker or peer passes through before it reaches the terminal.
 * Pure; no BEP (display only).
 */

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'] as const;

/** 512 -> "512 B", 1536 -> "1.50 KiB", 1.5 * 2^30 -> "1.50 GiB" (binary units). */
export function humanBytes(n: number): string {
  if (!Number.isFinite(n) || n < 0) return '? B';
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  if (unit === 0) return `${Math.round(value)} B`;
  // 1023.999 KiB would print as "1024.00 KiB": step up instead
  if (value.toFixed(2) === '1024.00' && unit < UNITS.length - 1) return `1.00 ${UNITS[unit + 1]}`;
  return `${value.toFixed(2)} ${UNITS[unit]}`;
}

/** Bytes per second -> "1.50 MiB/s". */
export function formatRate(bytesPerSec: number): string {
  return `${humanBytes(Number.isFinite(bytesPerSec) && bytesPerSec > 0 ? bytesPerSec : 0)}/s`;
}

/** Seconds -> "42s", "3m 05s", "2h 03m", "4d 07h"; unknown or infinite -> "∞". */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '∞';
  // under 10 s, tenths: a loopback or LAN download of a GiB takes 2 s, and "in 0s" says nothing
  const tenths = Math.round(seconds * 10) / 10;
  if (tenths === 0) return '0s';
  if (tenths < 10) return `${tenths.toFixed(1)}s`;
  const s = Math.round(seconds);
  const pad = (n: number): string => String(n).padStart(2, '0');
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${pad(s % 60)}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h ${pad(Math.floor((s % 3600) / 60))}m`;
  return `${Math.floor(s / 86_400)}d ${pad(Math.floor((s % 86_400) / 3600))}h`;
}

/**
 * C0 controls (ESC included, so no CSI/OSC sequence survives), DEL, C1 controls
 * (U+009B is a one-byte CSI), bidi embeddings/overrides/isolates and marks,
 * and line/paragraph separators.
 */
// eslint-disable-next-line no-control-regex
const UNSAFE_FOR_TERMINAL = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/**
 * JSON text with every character a terminal could act on written as a \uXXXX
 * escape (JSON.stringify escapes only C0): the same value for a JSON parser.
 */
export function terminalSafeJsonText(json: string): string {
  return json.replace(/[\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Make an untrusted string safe to print: every unsafe character becomes U+FFFD. */
export function sanitizeForTerminal(s: string): string {
  return s.replace(UNSAFE_FOR_TERMINAL, '\ufffd');
}
