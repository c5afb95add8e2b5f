// Identifiers the SDK makes: UUIDv7 correlation ids (time-ordered, like the server's own) and idempotency
// keys. Only `crypto.getRandomValues` is needed: browsers and Node have it; React Native needs the
// `react-native-get-random-values` polyfill.

/** A new UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then random bits. */
export function uuidv7(now: number = Date.now()): string {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  let millis = now;
  for (let index = 5; index >= 0; index--) {
    bytes[index] = millis % 256;
    millis = Math.floor(millis / 256);
  }
  bytes[6] = 0x70 | (bytes[6]! & 0x0f);
  bytes[8] = 0x80 | (bytes[8]! & 0x3f);
  const hex = Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** A fresh idempotency key for one logical call (the server accepts 16..=255 visible ASCII characters). */
export function newIdempotencyKey(): string {
  return `sdk-${uuidv7()}`;
}
