import { describe, expect, it } from 'vitest';
import { DirectWriteMonitor, splitForDirect } from '../../../src/storage/direct-io.js';
import { DIRECT_ALIGN } from '../../../src/storage/piece-buffers.js';
import { mulberry32 } from '../../helpers/prng.js';

const MiB = 1024 * 1024;

describe('splitForDirect', () => {
  it('a whole aligned piece goes direct in one part', () => {
    expect(splitForDirect(0, 3 * 262144, 262144)).toEqual({ head: 0, middle: 262144 });
    expect(splitForDirect(262144, 0, 262144)).toEqual({ head: 0, middle: 262144 });
  });

  it('an unaligned tail and a head up to the first aligned file offset stay buffered', () => {
    // the last piece of a file: 10000 bytes from an aligned offset
    expect(splitForDirect(0, 8192, 10000)).toEqual({ head: 0, middle: 8192 });
    // a file starting inside a piece at buffer offset 100, file offset 0? offsets disagree
    expect(splitForDirect(100, 0, 50000)).toBeUndefined();
    // buffer and file offsets agree modulo 4096: head to the boundary, then whole blocks
    expect(splitForDirect(4096 + 96, 96, 20000)).toEqual({ head: 4000, middle: 12288 });
  });

  it('no direct part when not even one aligned block fits', () => {
    expect(splitForDirect(0, 0, 4095)).toBeUndefined();
    expect(splitForDirect(10, 10, 8000)).toBeUndefined(); // head 4086, then 3914 < 4096
  });

  it('always splits into an aligned middle inside the range (random cases)', () => {
    const rng = mulberry32(11);
    for (let i = 0; i < 5000; i++) {
      const bufferOffset = Math.floor(rng() * 1e6);
      const fileOffset = rng() < 0.5 ? bufferOffset + DIRECT_ALIGN * Math.floor(rng() * 100) : Math.floor(rng() * 1e9);
      const length = 1 + Math.floor(rng() * 300_000);
      const s = splitForDirect(bufferOffset, fileOffset, length);
      if (!s) continue;
      expect(s.middle % DIRECT_ALIGN).toBe(0);
      expect(s.middle).toBeGreaterThan(0);
      expect((bufferOffset + s.head) % DIRECT_ALIGN).toBe(0);
      expect((fileOffset + s.head) % DIRECT_ALIGN).toBe(0);
      expect(s.head).toBeLessThan(DIRECT_ALIGN);
      expect(s.head + s.middle).toBeLessThanOrEqual(length);
      expect(length - s.head - s.middle).toBeLessThan(DIRECT_ALIGN); // tail shorter than a block
    }
  });
});

describe('DirectWriteMonitor', () => {
  function clocked(windowBytes = 64 * MiB): { m: DirectWriteMonitor; at: (ms: number) => void } {
    let now = 0;
    const m = new DirectWriteMonitor({ now: () => now, windowBytes });
    return { m, at: (ms) => (now = ms) };
  }

  it('stays on for a disk that writes 1 GB/s', () => {
    const { m, at } = clocked();
    for (let i = 0; i < 1024; i++) {
      at(i * 0.25);
      m.begin();
      at(i * 0.25 + 0.25); // 256 KiB in 0.25 ms
      m.end(256 * 1024);
    }
    expect(m.enabled).toBe(true);
    expect(m.directBytes).toBe(256 * MiB);
  });

  it('turns off for a disk slower than 128 MiB/s, saying why', () => {
    const { m, at } = clocked();
    for (let i = 0; i < 256; i++) {
      at(i * 10);
      m.begin();
      at(i * 10 + 8); // 256 KiB per 8 ms of a seeking disk: 31 MiB/s
      m.end(256 * 1024);
    }
    expect(m.enabled).toBe(false);
    expect(m.offReason).toMatch(/wrote 31 MiB\/s with O_DIRECT, below 128/);
  });

  it('counts concurrent writes as the disk serving them together (busy time, not summed time)', () => {
    // four 4 MiB writes in flight together for 50 ms: 16 MiB per 50 ms of device time = 320 MiB/s
    // (summing each write's 50 ms would make it 80 MiB/s and turn direct writes off)
    const together = clocked(16 * MiB);
    together.at(0);
    for (let k = 0; k < 4; k++) together.m.begin();
    together.at(50);
    for (let k = 0; k < 4; k++) together.m.end(4 * MiB);
    expect(together.m.enabled).toBe(true);
    // the same writes one after another, 50 ms each: really 80 MiB/s
    const oneByOne = clocked(16 * MiB);
    for (let i = 0; i < 4; i++) {
      oneByOne.at(i * 50);
      oneByOne.m.begin();
      oneByOne.at(i * 50 + 50);
      oneByOne.m.end(4 * MiB);
    }
    expect(oneByOne.m.enabled).toBe(false);
  });

  it('idle time between writes is not counted against the disk', () => {
    const { m, at } = clocked(4 * MiB);
    for (let i = 0; i < 16; i++) {
      at(i * 1000); // one piece a second: a slow network, not a slow disk
      m.begin();
      at(i * 1000 + 1);
      m.end(256 * 1024);
    }
    expect(m.enabled).toBe(true);
  });

  it('disable() keeps the first reason', () => {
    const m = new DirectWriteMonitor();
    m.disable('first');
    m.disable('second');
    expect(m.offReason).toBe('first');
  });
});
