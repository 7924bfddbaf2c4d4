/**
 * Identifiers. Tasks, steps and batches get UUIDv7 ids generated in Node, so a
 * task's steps and edges can be inserted in the same round trip that creates it,
 * and ids sort by creation time (index locality, stable ordering).
 */
import { randomFillSync } from 'node:crypto';

const HEX: readonly string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

let lastMs = -1;
let sequence = 0;

/**
 * A new UUIDv7 (RFC 9562): 48-bit Unix milliseconds, then 74 random bits. Within one
 * millisecond the 12 bits after the version are a counter (RFC 9562 §6.2, method 1)
 * started at a random value, so ids made by this process are strictly increasing.
 */
export function newId(now: number = Date.now()): string {
  const bytes = Buffer.allocUnsafe(16);
  randomFillSync(bytes);
  let ms = now;
  if (ms <= lastMs) {
    ms = lastMs;
    sequence += 1;
    if (sequence > 0xfff) {
      ms = lastMs + 1;
      sequence = bytes[6]! & 0x07;
    }
  } else {
    sequence = ((bytes[6]! & 0x07) << 8) | bytes[7]!;
  }
  lastMs = ms;
  bytes.writeUIntBE(ms, 0, 6);
  bytes[6] = 0x70 | (sequence >> 8);
  bytes[7] = sequence & 0xff;
  bytes[8] = 0x80 | (bytes[8]! & 0x3f);
  let out = '';
  for (let i = 0; i < 16; i++) {
    out += HEX[bytes[i]!];
    if (i === 3 || i === 5 || i === 7 || i === 9) out += '-';
  }
  return out;
}

/** `count` new ids, strictly increasing. */
export function newIds(count: number, now: number = Date.now()): string[] {
  const ids = new Array<string>(count);
  for (let i = 0; i < count; i++) ids[i] = newId(now);
  return ids;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** True when `value` is a UUID in canonical text form (any version). */
export function isUuid(value: string): boolean {
  return UUID.test(value);
}

/** Milliseconds since the epoch encoded in a UUIDv7. */
export function uuidV7Time(id: string): number {
  return parseInt(id.slice(0, 8) + id.slice(9, 13), 16);
}
