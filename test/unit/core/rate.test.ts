import { describe, expect, it } from 'vitest';
import { RateMeter, TokenBucket } from '../../../src/core/rate.js';

/** A manual clock in milliseconds. */
function fakeClock(start = 0): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => (t += ms) };
}

describe('RateMeter', () => {
  it('measures a steady flow over the window', () => {
    const clock = fakeClock(1_000_000);
    const meter = new RateMeter(5, clock.now);
    // 100 bytes every 100 ms = 1000 B/s for 10 s
    for (let i = 0; i < 100; i++) {
      meter.add(100);
      clock.advance(100);
    }
    expect(meter.total).toBe(10_000);
    for (let i = 0; i < 10; i++) {
      expect(meter.rate).toBeGreaterThan(950);
      expect(meter.rate).toBeLessThan(1050);
      meter.add(100);
      clock.advance(100);
    }
  });

  it('an exact window of full seconds reads sum / (window - 1) at a second boundary', () => {
    const clock = fakeClock(10_000);
    const meter = new RateMeter(5, clock.now);
    for (let s = 0; s < 5; s++) {
      meter.add(1000);
      clock.advance(1000);
    }
    // at t=15 s the bucket for second 10 has expired: 4 full seconds of 1000 remain
    expect(meter.rate).toBeCloseTo(1000, 6);
  });

  it('old buckets expire, one second at a time, then all of them', () => {
    const clock = fakeClock(0);
    const meter = new RateMeter(5, clock.now);
    meter.add(1000); // second 0
    clock.advance(3000);
    meter.add(2000); // second 3
    clock.advance(1000); // t = 4 s: both in the window
    expect(meter.rate).toBeCloseTo(3000 / 4, 6);
    clock.advance(1000); // t = 5 s: second 0 is gone
    expect(meter.rate).toBeCloseTo(2000 / 4, 6);
    clock.advance(3000); // t = 8 s: second 3 is gone
    expect(meter.rate).toBe(0);
    expect(meter.total).toBe(3000);
  });

  it('a meter younger than its window divides by its age, not below a quarter second', () => {
    const clock = fakeClock(7_400);
    const meter = new RateMeter(5, clock.now);
    clock.advance(10);
    meter.add(16_384);
    expect(meter.rate).toBeCloseTo(16_384 / 0.25, 6); // the first block is no spike
    clock.advance(290);
    meter.add(16_384 * 99);
    expect(meter.rate).toBeCloseTo((16_384 * 100) / 0.3, 6); // 0.3 s old: all of it over 0.3 s
    clock.advance(1700); // 2 s old
    meter.add(16_384 * 100);
    expect(meter.rate).toBeCloseTo((16_384 * 200) / 2, 6);
    clock.advance(6000); // older than the window: the window rules again
    meter.add(4000);
    expect(meter.rate).toBeCloseTo(4000 / 4.4, 6);
  });

  it('a gap longer than the window clears everything', () => {
    const clock = fakeClock(123_456);
    const meter = new RateMeter(5, clock.now);
    meter.add(50_000);
    expect(meter.rate).toBeGreaterThan(0);
    clock.advance(60_000);
    expect(meter.rate).toBe(0);
    meter.add(4000);
    clock.advance(1000); // t = 184.456 s: 4000 bytes over 4 s + the 0.456 s of this second
    expect(meter.rate).toBeCloseTo(4000 / 4.456, 6);
  });
});

describe('TokenBucket', () => {
  it('0 and Infinity mean unlimited: never a wait', () => {
    for (const limit of [0, Number.POSITIVE_INFINITY]) {
      const bucket = new TokenBucket(limit, () => 0);
      expect(bucket.unlimited).toBe(true);
      for (let i = 0; i < 1000; i++) expect(bucket.take(1 << 20)).toBe(0);
    }
    expect(new TokenBucket(1, () => 0).unlimited).toBe(false);
  });

  it('starts with a burst, then computes the wait for the missing tokens', () => {
    const clock = fakeClock();
    const bucket = new TokenBucket(100_000, clock.now); // burst = 25,000
    expect(bucket.take(25_000)).toBe(0);
    expect(bucket.take(10_000)).toBe(100); // 10,000 B at 100,000 B/s
    clock.advance(50);
    expect(bucket.take(10_000)).toBe(50); // half refilled
    clock.advance(50);
    expect(bucket.take(10_000)).toBe(0);
    expect(bucket.take(1)).toBe(1); // ceil: never a zero wait when tokens are short
  });

  it('reserve() serves callers in the order they ask: a waiter is never overtaken', () => {
    const clock = fakeClock();
    const bucket = new TokenBucket(16_384, clock.now); // burst = one block
    expect(bucket.reserve(16_384)).toBe(0); // A: the burst
    expect(bucket.reserve(16_384)).toBe(1000); // B: one second
    expect(bucket.reserve(16_384)).toBe(2000); // A again: behind B, not racing it
    clock.advance(1000); // B sends
    expect(bucket.reserve(16_384)).toBe(2000); // B again: behind A
    expect(new TokenBucket(0, clock.now).reserve(1 << 30)).toBe(0);
  });

  it('reserve() keeps the long-run rate: N blocks reserved back to back take (N - burst) / rate', () => {
    const clock = fakeClock();
    const bucket = new TokenBucket(100_000, clock.now); // burst 25,000
    let last = 0;
    for (let i = 0; i < 100; i++) last = bucket.reserve(10_000);
    expect(last).toBe(Math.ceil(((100 * 10_000 - 25_000) / 100_000) * 1000));
  });

  it('refills no further than the burst', () => {
    const clock = fakeClock();
    const bucket = new TokenBucket(100_000, clock.now);
    clock.advance(3_600_000);
    expect(bucket.take(25_000)).toBe(0);
    expect(bucket.take(16_384)).toBeGreaterThan(0);
  });

  it('the burst is at least one block even for a tiny limit', () => {
    const clock = fakeClock();
    const bucket = new TokenBucket(1000, clock.now);
    expect(bucket.take(16_384)).toBe(0);
    expect(bucket.take(1000)).toBe(1000);
  });

  for (const limit of [1000, 10_000, 100_000, 1_000_000]) {
    it(`a greedy sender never beats ${limit} B/s by more than the burst, and gets close to it`, () => {
      const BLOCK = 16_384;
      const burst = Math.max(BLOCK, limit / 4);
      const clock = fakeClock(5000);
      const bucket = new TokenBucket(limit, clock.now);
      const DURATION_MS = 60_000;
      let sent = 0;
      let worstExcess = Number.NEGATIVE_INFINITY; // max over time of sent - limit * elapsed
      let badWaits = 0;
      for (let step = 0; step < 1_000_000 && clock.now() - 5000 < DURATION_MS; step++) {
        const wait = bucket.take(BLOCK);
        if (wait === 0) {
          sent += BLOCK;
          worstExcess = Math.max(worstExcess, sent - (limit * (clock.now() - 5000)) / 1000);
        } else {
          if (!(wait > 0 && Number.isFinite(wait))) badWaits++;
          clock.advance(wait);
        }
      }
      expect(badWaits).toBe(0);
      expect(worstExcess).toBeLessThanOrEqual(burst + 1e-6); // float slack only
      const elapsedS = (clock.now() - 5000) / 1000;
      expect(sent).toBeGreaterThanOrEqual(limit * elapsedS - BLOCK);
    });
  }
});
