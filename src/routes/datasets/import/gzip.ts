// A gzip-compressed upload (Content-Encoding: gzip, a .gz file or URL) decompressed as it streams
// past (node:zlib, never whole in memory). What comes out is what DATASET_MAX_BYTES counts, so a
// bomb (kilobytes that inflate to gigabytes) stops at the limit: the caller's count throws, and
// leaving the loop here destroys the inflater and the input with it.
import { Readable } from 'node:stream'
import { createGunzip } from 'node:zlib'
import { InvalidDataError } from './invalid-data.ts'

export type Compression = 'gzip'

export async function * gunzip (input: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  const compressed = Readable.from(input, { objectMode: false })
  const inflater = createGunzip()
  // An error of the input (413, a client gone, a connection reset) is passed on as it is; the
  // inflater's own mean the stream is no gzip, or a damaged one.
  let inputError: Error | undefined
  compressed.once('error', (error: Error) => {
    inputError = error
    inflater.destroy(error)
  })
  compressed.pipe(inflater)
  try {
    for await (const chunk of inflater as AsyncIterable<Buffer>) yield chunk
  } catch (error) {
    if (inputError !== undefined) throw inputError
    const reason = (error as { code?: string }).code === 'Z_BUF_ERROR' ? 'it ends before its end' : (error as Error).message
    throw new InvalidDataError(`the gzip stream is corrupt (${reason}): it could not be decompressed`)
  } finally {
    inflater.destroy()
    compressed.destroy()
  }
}

/** `input` as its bytes are meant: decompressed when compressed. */
export function decompressed (input: AsyncIterable<Buffer>, compression: Compression | undefined): AsyncIterable<Buffer> {
  return compression === 'gzip' ? gunzip(input) : input
}
