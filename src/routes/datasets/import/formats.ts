// The upload formats: one table of format → media types and file extensions, from which both the
// body parsers of the upload route and the detection of a file's or a URL's format are derived.
// And the charset of an upload, from its Content-Type, checked against the WHATWG decoders that
// Node ships (UTF-8 unless said otherwise).
import { parse as parseContentType } from 'content-type'
import Type from 'typebox'
import { Problem } from '../../../lib/errors.ts'

export const UPLOAD_FORMATS = {
  csv: { mediaTypes: ['text/csv', 'application/csv'], extensions: ['csv'] },
  json: { mediaTypes: ['application/json'], extensions: ['json'] },
  ndjson: { mediaTypes: ['application/x-ndjson', 'application/ndjson', 'application/jsonl', 'application/jsonlines', 'application/x-jsonlines'], extensions: ['ndjson', 'jsonl'] },
} as const satisfies Record<string, { mediaTypes: readonly string[], extensions: readonly string[] }>

export type Format = keyof typeof UPLOAD_FORMATS
export const FORMATS = Object.keys(UPLOAD_FORMATS) as Format[]
export const FormatSchema = Type.Unsafe<Format>(Type.Enum([...FORMATS], { type: 'string' }))

/** Every media type an upload may be sent as. */
export const UPLOAD_MEDIA_TYPES: string[] = FORMATS.flatMap((format) => [...UPLOAD_FORMATS[format].mediaTypes])

const FORMAT_BY_MEDIA_TYPE = new Map<string, Format>(FORMATS.flatMap((format) => UPLOAD_FORMATS[format].mediaTypes.map((type) => [type, format] as const)))
const FORMAT_BY_EXTENSION = new Map<string, Format>(FORMATS.flatMap((format) => UPLOAD_FORMATS[format].extensions.map((extension) => [extension, format] as const)))

/** The format a Content-Type names, else the one a file name's (or URL path's) extension names. */
export function formatOf (contentType: string | undefined, path = ''): Format | undefined {
  const named = contentType === undefined ? undefined : FORMAT_BY_MEDIA_TYPE.get(parseContentType(contentType).type)
  return named ?? FORMAT_BY_EXTENSION.get(/\.([a-z]+)$/i.exec(path)?.[1]?.toLowerCase() ?? '')
}

/**
 * The text encoding of an upload: its Content-Type's charset, or UTF-8. An encoding Node's
 * TextDecoder does not know is refused (415) before anything is read.
 */
export function charsetOf (contentType: string | undefined): string {
  const charset = contentType === undefined ? undefined : parseContentType(contentType).parameters.charset
  if (charset === undefined) return 'utf-8'
  try {
    return new TextDecoder(charset).encoding
  } catch {
    throw new Problem('unsupported-media-type', `The charset "${charset.slice(0, 40)}" is not one this service can decode (utf-8, utf-16le, latin1/windows-1252 and the other WHATWG encodings are).`)
  }
}
