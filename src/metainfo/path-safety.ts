/**
 * Which torrent-supplied path components may become file names (HARDENING.md
 * "Paths"; the CVE-2009-1760 / CVE-2010-0012 class). Pure checks only; the
 * storage layer still joins paths under the download folder itself.
 */

/** Why `component` is unsafe as one path component, or undefined when it is safe. */
export function unsafeComponentReason(component: string): string | undefined {
  if (component.length === 0) return 'empty path component';
  if (component === '.' || component === '..') return `path component '${component}'`;
  if (component.includes('/')) return "path component contains '/'";
  if (component.includes('\\')) return "path component contains '\\'";
  if (component.includes('\0')) return 'path component contains NUL';
  if (/^[A-Za-z]:/.test(component)) return 'path component is a drive letter';
  return undefined;
}

/** True when every component is safe and there is at least one. */
export function isSafePath(components: readonly string[]): boolean {
  return components.length > 0 && components.every((c) => unsafeComponentReason(c) === undefined);
}
