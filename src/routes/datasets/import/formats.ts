// The upload formats: one table of format → media types and file extensions, from which both the
// body parsers of the upload route and the detection of a file's or a URL's format are derived.
// And the charset of an upload, from its Content-Type, checked against the WHATWG decoders that
// Node ships (UTF-8 unless said otherwise), and its compression (gzip), from its Content-Encoding
// or a .gz name.
import { parse as parseContentType } from 'content-type'
import Type from 'typebox'
import { Problem } from '../../../lib/errors.ts'
import type { Compression } from './gzip.ts'

export const UPLOAD_FORMATS = {
  csv: { mediaTypes: ['text/csv', 'application/csv'], extensions: ['csv'] },
  /** CSV with tabs between its fields. */
  tsv: { mediaTypes: ['text/tab-separated-values'], extensions: ['tsv', 'tab'] },
  json: { mediaTypes: ['application/json'], extensions: ['json'] },
  ndjson: { mediaTypes: ['application/x-ndjson', 'application/ndjson', 'application/jsonl', 'application/jsonlines', 'application/x-jsonlines'], extensions: ['ndjson', 'jsonl'] },
  /** An Excel workbook: its first sheet. Bytes, not text. */
  xlsx: { mediaTypes: ['application/vnd.openxmlformats-officedocument.spreadsheetml.sheet'], extensions: ['xlsx'] },
} as const satisfies Record<string, { mediaTypes: readonly string[], extensions: readonly string[] }>

export type Format = keyof typeof UPLOAD_FORMATS
export const FORMATS = Object.keys(UPLOAD_FORMATS) as Format[]
export const FormatSchema = Type.Unsafe<Format>(Type.Enum([...FORMATS], { type: 'string' }))

/** Every media type an upload may be sent as. */
export const UPLOAD_MEDIA_TYPES: string[] = FORMATS.flatMap((format) => [...UPLOAD_FORMATS[format].mediaTypes])

const FORMAT_BY_MEDIA_TYPE = new Map<string, Format>(FORMATS.flatMap((format) => UPLOAD_FORMATS[format].mediaTypes.map((type) => [type, format] as const)))
const FORMAT_BY_EXTENSION = new Map<string, Format>(FORMATS.flatMap((format) => UPLOAD_FORMATS[format].extensions.map((extension) => [extension, format] as const)))

const GZIP_MEDIA_TYPES = new Set(['application/gzip', 'application/x-gzip'])
const GZIP_EXTENSION = /\.gz$/i

/**
 * The format a Content-Type names, else the one a file name's (or URL path's) extension names,
 * a `.gz` after it left out (`data.csv.gz` is CSV, compressed).
 */
export function formatOf (contentType: string | undefined, path = ''): Format | undefined {
  const named = contentType === undefined ? undefined : FORMAT_BY_MEDIA_TYPE.get(parseContentType(contentType).type)
  return named ?? FORMAT_BY_EXTENSION.get(/\.([a-z]+)$/i.exec(path.replace(GZIP_EXTENSION, ''))?.[1]?.toLowerCase() ?? '')
}

/** Whether a file (a form's part, a URL's answer) is gzip by its media type or its name's `.gz`. */
export function isGzipFile (contentType: string | undefined, path = ''): boolean {
  return (contentType !== undefined && GZIP_MEDIA_TYPES.has(parseContentType(contentType).type)) || GZIP_EXTENSION.test(path)
}

/**
 * The compression a Content-Encoding names: gzip (or x-gzip), or none (absent, `identity`). Any
 * other coding, or more than one, is refused (415) before anything is read.
 */
export function contentEncodingOf (header: string | undefined): Compression | undefined {
  const codings = (header ?? '').split(',').map((coding) => coding.trim().toLowerCase()).filter((coding) => coding !== '' && coding !== 'identity')
  if (codings.length === 0) return undefined
  if (codings.length === 1 && (codings[0] === 'gzip' || codings[0] === 'x-gzip')) return 'gzip'
  throw new Problem('unsupported-media-type', `The Content-Encoding "${(header ?? '').slice(0, 40)}" is not one this service can decode: send gzip, or the data as it is (identity).`)
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
