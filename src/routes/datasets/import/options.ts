// How to read an upload, as the client said at upload (`?delimiter=`, `?decimal=`, `?types=`):
// read from the query once, checked before any byte is read, kept with a data set whose import
// runs as a job. And the rule that sniffs a CSV file's delimiter when none is named.
import { invalidParameter } from '../../../lib/errors.ts'
import { COLUMN_TYPES, type ColumnType } from '../column-types.ts'

export const DELIMITERS = [',', ';', '\t', '|'] as const
export type Delimiter = typeof DELIMITERS[number]

/** How text (CSV, TSV) is split and its numbers read. */
export interface TextOptions {
  delimiter?: Delimiter
  decimal?: '.' | ','
}

/** Everything the client may say about reading an upload; stored as JSON with a job's data set. */
export interface ImportOptions extends TextOptions {
  /** Column name → the type it gets, instead of the inferred one. */
  types?: Record<string, ColumnType>
}

/** The query parameters as the upload route's schema lets them through. */
export interface ImportQuery { delimiter?: string, decimal?: string, types?: string }

const DELIMITER_NAMES: Record<string, Delimiter> = { ',': ',', ';': ';', '\t': '\t', '\\t': '\t', tab: '\t', '|': '|' }
export const DELIMITER_PARAMETER_VALUES = Object.keys(DELIMITER_NAMES)

/** The options a query names; a 400 naming the parameter when one is wrong. */
export function importOptionsOf (query: ImportQuery): ImportOptions {
  const options: ImportOptions = {}
  if (query.delimiter !== undefined) {
    const delimiter = DELIMITER_NAMES[query.delimiter.toLowerCase()]
    if (delimiter === undefined) throw invalidParameter(`delimiter must be one of , ; \\t (or tab) | — not ${JSON.stringify(query.delimiter.slice(0, 20))}.`, 'delimiter')
    options.delimiter = delimiter
  }
  if (query.decimal !== undefined) {
    if (query.decimal !== ',' && query.decimal !== '.') throw invalidParameter(`decimal must be , or . — not ${JSON.stringify(query.decimal.slice(0, 20))}.`, 'decimal')
    options.decimal = query.decimal
    if (query.decimal === ',' && options.delimiter === ',') {
      throw invalidParameter('decimal=, cannot go with delimiter=, : a comma cannot both separate fields and be the decimal mark of numbers (files with decimal commas are usually separated by ; or tabs).', 'decimal')
    }
  }
  if (query.types !== undefined) options.types = typesOf(query.types)
  return options
}

/**
 * `col:type,other:type` → {col: type, other: type}. A name is everything before the last colon
 * of its item (so it may hold colons, not commas); a name given twice or a type that is not one
 * of ours is a 400 naming it. Whether each name is a column of the data is known once its header
 * is read (importer.ts).
 */
function typesOf (text: string): Record<string, ColumnType> {
  const types = Object.create(null) as Record<string, ColumnType>
  for (const item of text.split(',')) {
    const colon = item.lastIndexOf(':')
    const name = item.slice(0, colon).trim()
    const type = item.slice(colon + 1).trim().toLowerCase()
    if (colon <= 0 || name === '') throw invalidParameter(`types is a list of column:type, comma-separated (types=zip:text,born:date); ${JSON.stringify(item.slice(0, 60))} is not.`, 'types')
    if (!(COLUMN_TYPES as readonly string[]).includes(type)) throw invalidParameter(`types: "${type.slice(0, 40)}" (for column "${name.slice(0, 60)}") is not a column type; the types are ${COLUMN_TYPES.join(', ')}.`, 'types')
    if (name in types) throw invalidParameter(`types names column "${name.slice(0, 60)}" twice.`, 'types')
    types[name] = type as ColumnType
  }
  return types
}

// The delimiter is sniffed from at most this many records.
const SNIFF_RECORDS = 50

/**
 * The delimiter of a CSV file from its first records (`text`: its beginning; `isWhole`: all of
 * it). Each candidate is counted in each record outside quoted fields (so "a;b" in quotes counts
 * no semicolon, and a quoted field over several lines is one record), blank records skipped; the
 * last record is left out unless the text is whole (it may be cut off). A candidate is
 * consistent when it occurs in the header and the same number of times in every record: the
 * consistent one with the most fields wins. Failing that (a ragged file, which the reader will
 * then refuse with its line), the one most frequent in the header. Ties go to the earlier of
 * `candidates` (comma first); nothing found, the first candidate (a file of one column).
 */
export function sniffDelimiter (text: string, isWhole: boolean, candidates: readonly Delimiter[] = DELIMITERS): Delimiter {
  const records: Array<Map<string, number>> = []
  let counts = new Map<string, number>()
  let isQuoted = false
  let isBlank = true
  const endRecord = (): void => {
    if (!isBlank) records.push(counts)
    counts = new Map()
    isBlank = true
  }
  for (let at = 0; at < text.length && records.length <= SNIFF_RECORDS; at++) {
    const character = text[at]!
    if (character === '"') {
      isQuoted = !isQuoted // a doubled "" inside quotes toggles twice
      isBlank = false
    } else if (isQuoted) {
      continue
    } else if (character === '\n' || character === '\r') {
      endRecord()
    } else {
      isBlank = false
      if ((candidates as readonly string[]).includes(character)) counts.set(character, (counts.get(character) ?? 0) + 1)
    }
  }
  if (isWhole && records.length <= SNIFF_RECORDS) endRecord()
  else if (records.length > SNIFF_RECORDS) records.length = SNIFF_RECORDS
  const [header, ...rest] = records
  if (header === undefined) return candidates[0]!
  const inHeader = (candidate: Delimiter): number => header.get(candidate) ?? 0
  const best = (among: Delimiter[]): Delimiter | undefined =>
    among.reduce<Delimiter | undefined>((found, candidate) => found === undefined || inHeader(candidate) > inHeader(found) ? candidate : found, undefined)
  const consistent = candidates.filter((candidate) => inHeader(candidate) > 0 && rest.every((record) => (record.get(candidate) ?? 0) === inHeader(candidate)))
  return best(consistent) ?? best(candidates.filter((candidate) => inHeader(candidate) > 0)) ?? candidates[0]!
}
