// Bytes of an upload to text, in its charset, refusing what is not valid in it: invalid UTF-8 is
// a 400 naming its line, never silently replaced by U+FFFD. A UTF-8 or UTF-16 byte order mark is
// dropped (TextDecoder does that). Line numbers count "\n" as CSV and NDJSON lines do.
import { InvalidDataError } from './invalid-data.ts'

const NEWLINE = '\n'

export async function * decodeText (input: AsyncIterable<Buffer>, charset: string): AsyncGenerator<string> {
  const decoder = new TextDecoder(charset, { fatal: true })
  const encoding = decoder.encoding
  let line = 1
  let offset = 0 // bytes before the chunk being decoded
  let tail = new Uint8Array(0) // their last three
  const refuse = (bytes: Uint8Array): InvalidDataError => {
    const lineOfError = bytes.length === 0 ? line : line + linesBeforeError(Buffer.concat([held(tail, offset, encoding), bytes]), encoding)
    return new InvalidDataError(`the data is not valid ${encoding} text (declare another charset in the Content-Type if it is one)`, { line: lineOfError })
  }
  for await (const chunk of input) {
    let text: string
    try {
      text = decoder.decode(chunk, { stream: true })
    } catch {
      throw refuse(chunk)
    }
    for (let at = text.indexOf(NEWLINE); at !== -1; at = text.indexOf(NEWLINE, at + 1)) line++
    offset += chunk.length
    tail = Uint8Array.from(chunk.length >= 3 ? chunk.subarray(-3) : [...tail, ...chunk].slice(-3))
    if (text !== '') yield text
  }
  let rest: string
  try {
    rest = decoder.decode()
  } catch {
    throw refuse(new Uint8Array(0)) // the data ends inside a character
  }
  if (rest !== '') yield rest
}

/**
 * The bytes a streaming decoder holds at the end of `tail` (the last bytes before `offset`, all
 * decoded without error): a UTF-8 character begun, a UTF-16 code unit begun and a high surrogate
 * waiting for its pair. Other encodings: none known (a character cut by a chunk may then put the
 * error a line late).
 */
function held (tail: Uint8Array, offset: number, encoding: string): Uint8Array {
  if (encoding === 'utf-8') {
    for (let back = 1; back <= tail.length; back++) {
      const byte = tail[tail.length - back]!
      if ((byte & 0xc0) === 0x80) continue // continues a character
      const length = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : byte >= 0xc0 ? 2 : 1
      return length > back ? tail.subarray(tail.length - back) : new Uint8Array(0)
    }
    return new Uint8Array(0)
  }
  if (encoding === 'utf-16le' || encoding === 'utf-16be') {
    const half = offset % 2
    const unitEnd = tail.length - half
    const unit = unitEnd < 2 ? 0 : encoding === 'utf-16le' ? tail[unitEnd - 2]! | (tail[unitEnd - 1]! << 8) : (tail[unitEnd - 2]! << 8) | tail[unitEnd - 1]!
    const highSurrogate = unitEnd >= 2 && (unit & 0xfc00) === 0xd800
    return tail.subarray(tail.length - half - (highSurrogate ? 2 : 0))
  }
  return new Uint8Array(0)
}

/**
 * The line breaks before the first byte of `bytes` that does not decode (`bytes` starting where
 * a character starts), found by bisection and counted in the text that decodes: not as 0x0A bytes,
 * which UTF-16 has in many characters (and "\n" is two bytes there).
 */
function linesBeforeError (bytes: Uint8Array, encoding: string): number {
  const decodes = (end: number): boolean => {
    try {
      new TextDecoder(encoding, { fatal: true, ignoreBOM: true }).decode(bytes.subarray(0, end), { stream: true })
      return true
    } catch {
      return false
    }
  }
  let good = 0
  let bad = bytes.length
  if (decodes(bad)) {
    good = bad
  } else {
    while (bad - good > 1) {
      const middle = (good + bad) >>> 1
      if (decodes(middle)) good = middle
      else bad = middle
    }
  }
  const text = new TextDecoder(encoding, { ignoreBOM: true }).decode(bytes.subarray(0, good), { stream: true })
  let lines = 0
  for (let at = text.indexOf(NEWLINE); at !== -1; at = text.indexOf(NEWLINE, at + 1)) lines++
  return lines
}
