// The import's codecs for numbers and dates (column-types.ts, scanned by hand for speed) against
// PostgreSQL itself over generated text (fast-check, fixed seed): a text is a numeric value exactly
// when it has the documented form, PostgreSQL reads it as a numeric, and it is a finite double (it
// goes back out as a JSON number); a date exactly when it is `YYYY-MM-DD` and PostgreSQL reads it
// as a date. The texts are built from the characters that matter (digits, signs, points,
// exponents, dashes) so that most are near misses, with valid values and extremes mixed in.
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import fc from 'fast-check'
import { literal, type ColumnType } from '../src/routes/datasets/column-types.ts'
import { createTestDatabase } from './helpers/database.ts'

// Deterministic: the seed is fixed (FC_SEED overrides it; FC_RUNS multiplies the cases).
const SEED = Number(process.env.FC_SEED ?? 20_261_203)
const RUNS = 60 * Number(process.env.FC_RUNS ?? 1)
const { sql } = await createTestDatabase({ after })
// pg_input_is_valid, the oracle, came with PostgreSQL 16 (a TEST_DATABASE_URL server may be older).
const [{ version }] = await sql<[{ version: number }]>`select current_setting('server_version_num')::int as version`
const skip = version < 160_000 ? `the oracle needs PostgreSQL 16 or later (pg_input_is_valid); this server is ${version}` : false

/** PostgreSQL's verdict on each text: the part of the codec's rule it owns. */
async function oracle (type: ColumnType, texts: string[]): Promise<boolean[]> {
  const rows = type === 'numeric'
    ? await sql<Array<{ ok: boolean }>>`
        select s ~ '^[-+]?(?:[0-9]+(?:\\.[0-9]*)?|\\.[0-9]+)(?:[eE][-+]?[0-9]{1,3})?$' and pg_input_is_valid(s, 'numeric') as ok
        from unnest(${texts}::text[]) with ordinality as t(s, n) order by n`
    : await sql<Array<{ ok: boolean }>>`
        select s ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}$' and pg_input_is_valid(s, 'date') as ok
        from unnest(${texts}::text[]) with ordinality as t(s, n) order by n`
  return rows.map((row, index) => row.ok && (type !== 'numeric' || Number.isFinite(Number(texts[index]))))
}

async function agrees (type: ColumnType, texts: string[]): Promise<void> {
  const expected = await oracle(type, texts)
  texts.forEach((text, index) => {
    const found = literal(type, text)
    assert.equal(found !== undefined, expected[index], `${type} ${JSON.stringify(text)}: the codec says ${found === undefined ? 'no' : 'yes'}, PostgreSQL ${expected[index] === true ? 'yes' : 'no'}`)
    if (found !== undefined) assert.equal(found, text, 'a number or date goes to PostgreSQL as it was written')
  })
}

const digits = (min: number, max: number): fc.Arbitrary<string> => fc.string({ unit: fc.constantFrom(...'0123456789'), minLength: min, maxLength: max })

const numericText = fc.oneof(
  // Near misses: any arrangement of the characters of a number.
  { weight: 4, arbitrary: fc.string({ unit: fc.constantFrom(...'0123456789+-.eE'), maxLength: 10 }) },
  { weight: 1, arbitrary: fc.string({ unit: fc.constantFrom(...'09.e- x_,'), maxLength: 6 }) },
  // Well-formed, of every size: signs, points at either end, exponents of 0 to 4 digits.
  {
    weight: 4,
    arbitrary: fc.tuple(fc.constantFrom('', '+', '-'), digits(0, 400), fc.constantFrom('', '.'), digits(0, 20), fc.constantFrom('', 'e', 'E'), fc.constantFrom('', '+', '-'), digits(0, 4))
      .map(([sign, whole, point, fraction, e, exponentSign, exponent]) => sign + whole + point + fraction + (e === '' ? '' : e + exponentSign + exponent)),
  },
  // Scales near PostgreSQL's limit of 16383 digits after the point.
  { weight: 1, arbitrary: fc.tuple(fc.integer({ min: 16_370, max: 16_390 }), fc.constantFrom('', 'e1', 'e-1', 'e-12', 'e+12')).map(([scale, exponent]) => `0.${'1'.repeat(scale)}${exponent}`) },
)

const dateText = fc.oneof(
  { weight: 3, arbitrary: fc.string({ unit: fc.constantFrom(...'0123456789-'), minLength: 8, maxLength: 11 }) },
  {
    weight: 5,
    arbitrary: fc.tuple(fc.integer({ min: 0, max: 10_000 }), fc.integer({ min: 0, max: 13 }), fc.integer({ min: 0, max: 32 }))
      .map(([year, month, day]) => `${String(year).padStart(4, '0')}-${String(month).padStart(2, '0')}-${String(day).padStart(2, '0')}`),
  },
  { weight: 1, arbitrary: fc.constantFrom('2024-02-29', '2023-02-29', '1900-02-29', '2000-02-29', '0001-01-01', '9999-12-31', '2026-1-01', '2026-01-1', ' 2026-01-01', '2026-01-01 ', '2026/01/01', '２０２６-01-01', '2026-01-01T00:00:00') },
)

describe('the codecs of numbers and dates, against PostgreSQL', { skip }, () => {
  it('accepts exactly the numeric texts PostgreSQL reads, in the documented form, finite as doubles', async () => {
    await fc.assert(fc.asyncProperty(fc.array(numericText, { minLength: 1, maxLength: 200 }), async (texts) => { await agrees('numeric', texts) }), { seed: SEED, numRuns: RUNS })
  })

  it('accepts exactly the YYYY-MM-DD texts PostgreSQL reads as dates', async () => {
    await fc.assert(fc.asyncProperty(fc.array(dateText, { minLength: 1, maxLength: 200 }), async (texts) => { await agrees('date', texts) }), { seed: SEED, numRuns: RUNS })
  })

  it('meets the corners: signs and points alone, exponents of four digits, year 0', async () => {
    await agrees('numeric', ['', '+', '-', '.', '-.', '5.', '.5', '+.5e-3', '1e', '1e+', '1e999', '1e1000', '1e-999', '-0', '0x10', 'NaN', 'Infinity', ' 1', '1 ', '1_000', `1${'0'.repeat(308)}`, `1${'0'.repeat(309)}`])
    await agrees('date', ['0000-01-01', '2026-00-10', '2026-13-01', '2026-04-31', '10000-01-01', '', '2026-01-01\n'])
  })
})
