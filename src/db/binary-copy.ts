// PostgreSQL's binary COPY format (https://www.postgresql.org/docs/current/sql-copy.html, "Binary
// Format") for moving bytea values as they are: postgres.js sends and reads bytea as hex text,
// twice the bytes and a large string per value to encode, parse and collect. A file is a signature,
// flags and a header extension, then per row its field count and each field as length + bytes
// (length -1: NULL), then -1 as the last field count.
const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1')
const HEADER = Buffer.concat([SIGNATURE, Buffer.alloc(8)]) // flags 0, no header extension
const TRAILER = Buffer.from([0xff, 0xff])

/** One row of non-NULL fields as a whole binary COPY input. */
export function binaryCopyRow (fields: readonly Buffer[]): Buffer {
  const lengths = Buffer.alloc(2 + 4 * fields.length)
  lengths.writeInt16BE(fields.length, 0)
  const parts: Buffer[] = [HEADER, lengths.subarray(0, 2)]
  fields.forEach((field, index) => {
    lengths.writeInt32BE(field.length, 2 + 4 * index)
    parts.push(lengths.subarray(2 + 4 * index, 6 + 4 * index), field)
  })
  parts.push(TRAILER)
  return Buffer.concat(parts)
}

/** The fields of the rows of a whole binary COPY output (NULL as null). */
export function binaryCopyRows (output: Buffer): Array<Array<Buffer | null>> {
  if (output.length < HEADER.length || !output.subarray(0, SIGNATURE.length).equals(SIGNATURE)) throw new Error('not a binary COPY output')
  let at = HEADER.length + output.readInt32BE(SIGNATURE.length + 4) // past the header extension
  const rows: Array<Array<Buffer | null>> = []
  for (;;) {
    const count = output.readInt16BE(at)
    at += 2
    if (count === -1) return rows
    const row: Array<Buffer | null> = []
    for (let field = 0; field < count; field++) {
      const length = output.readInt32BE(at)
      at += 4
      if (length === -1) {
        row.push(null)
        continue
      }
      row.push(output.subarray(at, at + length))
      at += length
    }
    rows.push(row)
  }
}
