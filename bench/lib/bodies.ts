// The response bodies every backend serves, whichever server runs them: the bench's cases ask for a
// path and must get exactly these bytes, from nginx and from the Node backends alike.

/** `/`: exactly 100 bytes; the last one is a newline. */
export const SMALL_BODY = Buffer.from(`${'switchyard bench backend '.repeat(4).slice(0, 99)}\n`)

/** `/16k`: exactly 16,384 bytes of printable text, the last one a newline. */
export const LARGE_BODY = Buffer.from(`${'0123456789abcdef'.repeat(1_024).slice(0, 16_383)}\n`)

/** Request path → body. Any other path is a 404. */
export const BODIES: ReadonlyMap<string, Buffer> = new Map([
  ['/', SMALL_BODY],
  ['/16k', LARGE_BODY],
])
