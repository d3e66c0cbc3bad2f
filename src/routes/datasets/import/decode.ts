// Bytes of an upload to text, in its charset, refusing what is not valid in it: invalid UTF-8 is
// a 400 naming its line, never silently replaced by U+FFFD. A UTF-8 or UTF-16 byte order mark is
// dropped (TextDecoder does that). Line numbers count "\n" as CSV and NDJSON lines do.
import { InvalidDataError } from './invalid-data.ts'

const NEWLINE = 0x0a

export async function * decodeText (input: AsyncIterable<Buffer>, charset: string): AsyncGenerator<string> {
  const decoder = new TextDecoder(charset, { fatal: true })
  let line = 1
  const refuse = (bytes: Uint8Array): InvalidDataError => {
    const at = firstUndecodable(bytes, charset)
    const lineOfError = line + bytes.subarray(0, at).reduce((count, byte) => count + (byte === NEWLINE ? 1 : 0), 0)
    return new InvalidDataError(`the data is not valid ${decoder.encoding} text (declare another charset in the Content-Type if it is one)`, { line: lineOfError })
  }
  for await (const chunk of input) {
    let text: string
    try {
      text = decoder.decode(chunk, { stream: true })
    } catch {
      throw refuse(chunk)
    }
    for (let at = text.indexOf('\n'); at !== -1; at = text.indexOf('\n', at + 1)) line++
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
 * The length of the longest prefix of `bytes` that decodes (a character cut at its end is fine):
 * where the error is, found by bisection. Bytes that continue a character begun in the previous
 * chunk are skipped first.
 */
function firstUndecodable (bytes: Uint8Array, charset: string): number {
  let start = 0
  if (charset === 'utf-8') while (start < 3 && start < bytes.length && (bytes[start]! & 0xc0) === 0x80) start++
  const decodes = (end: number): boolean => {
    try {
      new TextDecoder(charset, { fatal: true }).decode(bytes.subarray(start, end), { stream: true })
      return true
    } catch {
      return false
    }
  }
  let good = start
  let bad = bytes.length
  if (decodes(bad)) return bad
  while (bad - good > 1) {
    const middle = (good + bad) >>> 1
    if (decodes(middle)) good = middle
    else bad = middle
  }
  return good
}
