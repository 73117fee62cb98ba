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
