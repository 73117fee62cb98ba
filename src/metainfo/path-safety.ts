/**
 * Which torrent-supplied path components may become file names (HARDENING.md
 * "Paths"; the CVE-2009-1760 / CVE-2010-0012 class), and when two paths name
 * the same file. Pure checks only; the storage layer still joins paths under
 * the download folder itself.
 *
 * The rules are those of the platform tt runs on (`process.platform`, where
 * the files will be written; tests pass another):
 * - Everywhere: a component is not empty, `.` or `..`, and holds no `/`, `\`
 *   or NUL (a backslash is a separator on Windows, and torrents made there
 *   use it as one).
 * - Windows also refuses a colon anywhere (`C:` is a drive, `a.txt:s` an NTFS
 *   stream) and the reserved device names (`CON`, `NUL`, `COM1`... also with
 *   an extension: `nul.txt` opens the null device).
 * - On POSIX (Linux, macOS, the BSDs) a colon is an ordinary character:
 *   `A: Movie.mkv` or `x:y` is a file name like any other, as libtorrent
 *   keeps it there.
 *
 * Duplicates: two paths are refused as one when the file system they will be
 * written to would store them as one file, so that what is refused is what
 * would really overwrite something, and nothing else:
 * - Linux and other POSIX systems (ext4, XFS, Btrfs, ZFS): names are byte
 *   strings, so only identical names collide. `é` (U+00E9) and `e` + U+0301
 *   are two files there, as `A` and `a` are.
 * - macOS (APFS, HFS+ as formatted by default): names are compared
 *   case-insensitively and normalization-insensitively: NFD, then lower case.
 * - Windows (NTFS): case-insensitively, and trailing dots and spaces are
 *   dropped by the Win32 API (`a.` is `a`).
 * A case-insensitive file system mounted on Linux (vfat, exFAT, an ext4
 * folder with casefold) is not detected: two names differing in case then
 * name one file there, which stays inside the download folder (the storage
 * layer confines every path) but makes those files' pieces fail.
 *
 * Names on disk (diskComponent): a component is written under the name
 * libtorrent 2.0 gives it (its sanitize_append_path_element), so a folder one
 * client downloaded is found by the other with the same .torrent:
 * - C0 control characters (U+0001-U+001F: tab, CR, LF, ESC...) and each
 *   invalid UTF-8 sequence (a bad lead byte, a sequence cut short or with a
 *   bad continuation byte, overlong, a surrogate, past U+10FFFF) become `_`;
 *   DEL (U+007F) stays, as libtorrent keeps it on POSIX.
 * - The bidi marks and overrides U+200E, U+200F and U+202A-U+202E are dropped
 *   (`\u202Egnp.exe` cannot pose as `exe.png`); the isolates U+2066-U+2069
 *   stay, as in libtorrent.
 * - A component longer than 240 bytes of UTF-8 (240 characters on Windows)
 *   is cut after the character that reaches 240, never inside one, keeping
 *   its extension when the last dot lies in its last 9 bytes: 99 CJK
 *   characters + `.mp3` (301 bytes) become 80 characters + `.mp3` (244),
 *   under the 255-byte limit of ext4, XFS, Btrfs, APFS and NTFS. A longer
 *   "extension" is cut with the rest, as libtorrent does.
 * Anything else is kept byte for byte. What comes out is checked again
 * (unsafeComponentReason) and for collisions like any name.
 */

/** The platforms whose rules differ; anything else is treated as POSIX. */
export type PathPlatform = NodeJS.Platform;

/** Device names Windows reserves in every folder, with or without an extension. */
const WINDOWS_RESERVED = /^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³])(\..*)?$/i;

/** Why `component` is unsafe as one path component on `platform`, or undefined when it is safe. */
export function unsafeComponentReason(component: string, platform: PathPlatform = process.platform): string | undefined {
  if (component.length === 0) return 'empty path component';
  if (component === '.' || component === '..') return `path component '${component}'`;
  if (component.includes('/')) return "path component contains '/'";
  if (component.includes('\\')) return "path component contains '\\'";
  if (component.includes('\0')) return 'path component contains NUL';
  if (platform === 'win32') {
    if (/^[A-Za-z]:/.test(component)) return 'path component is a drive letter';
    if (component.includes(':')) return "path component contains ':' (an NTFS stream)";
    if (WINDOWS_RESERVED.test(component.replace(/[. ]+$/, ''))) return 'path component is a reserved device name';
  }
  return undefined;
}

/** True when every component is safe on `platform` and there is at least one. */
export function isSafePath(components: readonly string[], platform: PathPlatform = process.platform): boolean {
  return components.length > 0 && components.every((c) => unsafeComponentReason(c, platform) === undefined);
}

/**
 * The name `component` has on `platform`'s file system for comparison: two
 * components with the same key are one file there (see the module comment).
 */
export function collisionKey(component: string, platform: PathPlatform = process.platform): string {
  if (platform === 'darwin') return component.normalize('NFD').toLowerCase().normalize('NFD');
  if (platform === 'win32') return component.replace(/[. ]+$/, '').toUpperCase();
  return component;
}

/** The longest component libtorrent leaves whole before cutting (bytes; UTF-8 characters on Windows). */
export const MAX_COMPONENT_LENGTH = 240;
/** An extension is kept when its dot is among a component's last this-many-minus-one bytes (libtorrent). */
const EXTENSION_WINDOW = 10;
/** Bidi marks and overrides libtorrent drops from names (not the isolates U+2066-U+2069). */
const DROPPED_CODE_POINTS = new Set([0x200e, 0x200f, 0x202a, 0x202b, 0x202c, 0x202d, 0x202e]);
/** Characters libtorrent replaces with `_` on Windows (where tt refuses `:` before this). */
const WINDOWS_REPLACED = new Set([...'?<>"|*:'].map((c) => c.charCodeAt(0)));
const UNDERSCORE = 0x5f;
const DOT = 0x2e;

/** Bytes in the UTF-8 sequence a lead byte starts; 5 for the invalid 111110xx (skipped whole), 0 for no lead byte. */
function sequenceLength(lead: number): number {
  if (lead < 0x80) return 1;
  if (lead >> 5 === 0b110) return 2;
  if (lead >> 4 === 0b1110) return 3;
  if (lead >> 3 === 0b11110) return 4;
  if (lead >> 2 === 0b111110) return 5;
  return 0;
}

/** The code point at `i` and the bytes it takes; -1 for an invalid sequence (libtorrent's parse_utf8_codepoint). */
function codePointAt(bytes: Uint8Array, i: number): [number, number] {
  const len = sequenceLength(bytes[i]!);
  if (len === 1) return [bytes[i]!, 1];
  if (len === 0) return [-1, 1];
  if (len > 4) return [-1, len];
  if (i + len > bytes.length) return [-1, bytes.length - i];
  let cp = bytes[i]! & (0xff >> (len + 1));
  for (let k = 1; k < len; k++) {
    const b = bytes[i + k]!;
    if (b >> 6 !== 0b10) return [-1, len];
    cp = (cp << 6) | (b & 0x3f);
  }
  const overlong = cp < [0, 0, 0x80, 0x800, 0x10000][len]!;
  if (overlong || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return [-1, len];
  return [cp, len];
}

/**
 * The name the torrent path component `raw` (its bytes as in the .torrent) is
 * written under on `platform`: libtorrent's mapping (see the module comment).
 * The result may be empty, `.` or `..` (a name of bidi marks only): the caller
 * checks it with unsafeComponentReason.
 */
export function diskComponent(raw: Uint8Array, platform: PathPlatform = process.platform): string {
  const out: number[] = [];
  let bytesAdded = 0;
  let charsAdded = 0;
  let extensionTaken = false;
  for (let i = 0; i < raw.length; ) {
    const [cp, len] = codePointAt(raw, i);
    if (cp >= 0 && DROPPED_CODE_POINTS.has(cp)) {
      i += len;
      continue;
    }
    if (cp < 0x20 || (platform === 'win32' && WINDOWS_REPLACED.has(cp))) {
      // -1 (invalid UTF-8) or a C0 control; NUL never gets here (unsafeComponentReason refuses it)
      out.push(UNDERSCORE);
      bytesAdded++;
      charsAdded++;
      i += len;
      continue;
    }
    for (let k = i; k < i + len; k++) out.push(raw[k]!);
    bytesAdded += len;
    charsAdded++;
    if (!extensionTaken && (platform === 'win32' ? charsAdded : bytesAdded) >= MAX_COMPONENT_LENGTH) {
      let dot = -1;
      for (let j = raw.length - 1; j > Math.max(raw.length - EXTENSION_WINDOW, i); j--) {
        if (raw[j] === DOT) {
          dot = j;
          break;
        }
      }
      if (dot === -1) break;
      extensionTaken = true;
      i = dot;
      continue;
    }
    i += len;
  }
  return Buffer.from(out).toString('utf8');
}
