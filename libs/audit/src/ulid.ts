import { randomFillSync } from 'node:crypto';
import { monotonicFactory } from 'ulid';

// ulid draws one random number per character; its default source asks the OS for a single byte each time,
// which cost more than the rest of id generation together. This source reads the same cryptographic
// randomness from a pooled buffer refilled 4 KiB at a time.
const pool = Buffer.alloc(4096);
let offset = pool.length;

/** A uniform number in [0, 1) from 32 cryptographically random bits (ulid's PRNG interface). */
function pooledRandom(): number {
  if (offset + 4 > pool.length) {
    randomFillSync(pool);
    offset = 0;
  }
  const n = pool.readUInt32BE(offset);
  offset += 4;
  return n / 0x1_0000_0000;
}

/**
 * A ULID generator (26 Crockford base32 characters), monotonic: ids it mints in the same millisecond still
 * sort in minting order. Its argument is the timestamp part (milliseconds; default now). Each family of ids
 * takes its own generator, so that one family's timestamps never hold back another's.
 */
export function ulidGenerator(): (at?: number) => string {
  return monotonicFactory(pooledRandom);
}
