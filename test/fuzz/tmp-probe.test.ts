import { it } from 'vitest';
import { parseTorrent } from '../../src/metainfo/parse-torrent.js';
import { decode } from '../../src/metainfo/bencode.js';
import { unsafeComponentReason } from '../../src/metainfo/path-safety.js';
const t = (label: string, f: () => unknown) => { const t0 = performance.now(); let r: unknown; try { r = f(); r = 'ok'; } catch (e) { r = String(e).slice(0, 100); } console.log(label, (performance.now() - t0).toFixed(1), 'ms', r); };
it('probe', () => {
  const doc = Buffer.from(`d4:infod5:filesld6:lengthi1e4:pathl${'1:a'.repeat(1_000_000)}eee4:name1:x12:piece lengthi16384e6:pieces20:${'a'.repeat(20)}ee`);
  t('decode', () => decode(doc));
  t('parse', () => parseTorrent(doc));
  const comps = Array.from({length: 1_000_000}, () => Buffer.from('a'));
  t('text', () => comps.map((c) => c.toString('utf8')));
  const strs = comps.map((c) => c.toString('utf8'));
  t('check', () => strs.forEach((s) => unsafeComponentReason(s)));
  t('nfc', () => strs.forEach((s) => s.normalize('NFC')));
  t('trie', () => { let node: any = {}; for (const s of strs) { node.c ??= new Map(); let ch = node.c.get(s); if (!ch) { ch = {}; node.c.set(s, ch);} node = ch; } });
  t('join', () => strs.join('/'));
  t('parse again', () => parseTorrent(doc));
});
