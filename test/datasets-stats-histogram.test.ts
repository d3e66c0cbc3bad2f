// Histograms in the statistics of integer, numeric, date and timestamp columns, through HTTP on a
// real PostgreSQL: fast-check (fixed seed) generates columns of each type, they are uploaded as
// CSV, and the histograms the statistics job computed are compared with an oracle written here
// from the documented rules alone (schemas.ts's Histogram): it imports nothing from
// src/routes/datasets. Then the edge cases: one value, missing values, negative numbers, the
// extremes of each type (18-digit integers, 1e300 and 1e-400, years 1 and 9999), Infinity and NaN.
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import fc from 'fast-check'
import { createApiKeysRepository } from '../src/auth/api-keys.ts'
import { buildTestApp, listen } from './helpers/app.ts'
import { json, until } from './helpers/http.ts'

const SEED = Number(process.env.FC_SEED ?? 20_260_519)
const BINS = 20

const { app, sql } = await buildTestApp({ after }, {}, { worker: true })
const base = await listen(app)
const { key } = await createApiKeysRepository(sql).create('histogram tests')

/** Uploads a CSV and returns the data set's statistics once the job has computed them. */
async function statsOf (csv: string): Promise<any> {
  const response = await fetch(`${base}/datasets`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'text/csv' }, body: csv })
  const answer = await json(response)
  assert.equal(response.status, 201, JSON.stringify(answer))
  return await until('statistics', async () => {
    const detail = await json(await fetch(`${base}/datasets/${answer.dataset.id}`))
    return detail.stats.computed_at === null ? undefined : detail.stats
  })
}

// ─── The oracle ────────────────────────────────────────────────────────────────────────────────

type Kind = 'integer' | 'numeric' | 'date' | 'timestamp'
interface Bin { from: number | string, to: number | string, count: number }

const US_PER_DAY = 86_400_000_000n
const DAY_MS = 86_400_000

/** Units of a value: integers as themselves, dates in days, timestamps in microseconds since 1970. */
function unitsOf (kind: Exclude<Kind, 'numeric'>, text: string): bigint {
  if (kind === 'integer') return BigInt(text)
  const match = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:Z|\+00:00))?$/.exec(text)!
  const date = new Date(0)
  date.setUTCFullYear(Number(match[1]), Number(match[2]) - 1, Number(match[3]))
  const days = BigInt(Math.round(date.getTime() / DAY_MS))
  if (kind === 'date') return days
  return days * US_PER_DAY + BigInt(((Number(match[4]) * 60 + Number(match[5])) * 60 + Number(match[6])) * 1e6) + BigInt((match[7] ?? '').padEnd(6, '0'))
}

/** The text statistics use: YYYY-MM-DD; timestamps as to_json writes them in UTC. */
function textOf (kind: 'date' | 'timestamp', units: bigint): string {
  const floor = (a: bigint, b: bigint): bigint => a / b - (a % b < 0n ? 1n : 0n)
  const days = kind === 'date' ? units : floor(units, US_PER_DAY)
  const day = new Date(Number(days) * DAY_MS).toISOString().slice(0, 10)
  if (kind === 'date') return day
  const rest = units - days * US_PER_DAY
  const micro = rest % 1_000_000n
  const clock = new Date(Number(rest / 1000n)).toISOString().slice(11, 19)
  return `${day}T${clock}${micro === 0n ? '' : `.${String(micro).padStart(6, '0').replace(/0+$/, '')}`}+00:00`
}

/** A decimal literal (with an exponent, perhaps) as units × 10^-scale, for a scale large enough. */
function decimalOf (text: string, scale: number): bigint {
  const [, sign, whole, fraction = '', exponent = '0'] = /^([-+]?)(\d*)(?:\.(\d*))?(?:e([-+]?\d+))?$/i.exec(text)!
  const shift = scale + Number(exponent) - fraction.length
  const digits = BigInt(`${whole}${fraction}` || '0')
  const units = shift >= 0 ? digits * 10n ** BigInt(shift) : digits / 10n ** BigInt(-shift)
  return sign === '-' ? -units : units
}

function scaleOf (text: string): number {
  const [, fraction = '', exponent = '0'] = /^[-+]?\d*(?:\.(\d*))?(?:e([-+]?\d+))?$/i.exec(text)!
  return Math.max(0, fraction.length - Number(exponent))
}

/** The histogram the rules describe, from the values (text, as uploaded; null when missing). */
function expectedHistogram (kind: Kind, values: Array<string | null>): Bin[] {
  const present = values.filter((value): value is string => value !== null)
  if (present.length === 0) return []
  if (kind === 'numeric') {
    const scale = Math.max(...present.map(scaleOf))
    const units = present.map((text) => decimalOf(text, scale))
    const lo = units.reduce((a, b) => (b < a ? b : a))
    const hi = units.reduce((a, b) => (b > a ? b : a))
    const n = lo === hi ? 1 : Math.min(BINS, new Set(units).size)
    const counts = new Array<number>(n).fill(0)
    // v is in bin i when lo + (hi − lo)·i/n ≤ v < lo + (hi − lo)·(i + 1)/n, exactly; the max in the last.
    for (const v of units) counts[lo === hi ? 0 : Math.min(n - 1, Number((v - lo) * BigInt(n) / (hi - lo)))]! += 1
    const fine = 10n ** 20n // the edge's digits well below the data's: a double's worth of them
    const edge = (i: number): number => Number(`${lo * fine + (hi - lo) * fine * BigInt(i) / BigInt(n)}e-${scale + 20}`)
    return counts.map((count, i) => ({ from: edge(i), to: edge(i + 1), count }))
  }
  const units = present.map((text) => unitsOf(kind, text))
  const lo = units.reduce((a, b) => (b < a ? b : a))
  const hi = units.reduce((a, b) => (b > a ? b : a))
  const target = BigInt(Math.min(BINS, new Set(units).size))
  const span = hi - lo + 1n
  const width = (span + target - 1n) / target
  const n = Number((span + width - 1n) / width)
  const counts = new Array<number>(n).fill(0)
  for (const v of units) counts[Number((v - lo) / width)]! += 1
  const show = (u: bigint): number | string => (kind === 'integer' ? Number(u) : textOf(kind, u))
  return counts.map((count, i) => ({ from: show(lo + BigInt(i) * width), to: show(i === n - 1 ? hi : lo + BigInt(i + 1) * width), count }))
}

function assertHistogram (stats: any, name: string, kind: Kind, values: Array<string | null>): void {
  const column = stats.columns[name]
  assert.equal(column.type, kind, `${name}: the column is ${kind}`)
  const expected = expectedHistogram(kind, values)
  const bins: Bin[] = column.histogram.bins
  assert.deepEqual(bins.map((bin) => bin.count), expected.map((bin) => bin.count), `${name}: counts of ${JSON.stringify(values).slice(0, 300)}`)
  assert.equal(bins.reduce((sum, bin) => sum + bin.count, 0), column.count, `${name}: bins add up to count`)
  for (const [i, bin] of bins.entries()) {
    const wanted = expected[i]!
    if (kind === 'numeric') {
      for (const edge of ['from', 'to'] as const) {
        const [got, want] = [bin[edge] as number, wanted[edge] as number]
        assert.ok(Math.abs(got - want) <= Math.abs(want) * 1e-12, `${name}: bin ${i} ${edge} ${got}, expected ${want}`)
      }
    } else {
      assert.deepEqual([bin.from, bin.to], [wanted.from, wanted.to], `${name}: edges of bin ${i}`)
    }
  }
  if (bins.length > 0) assert.deepEqual([bins[0]!.from, bins.at(-1)!.to], [column.min, column.max], `${name}: from min to max`)
}

// ─── Generators ────────────────────────────────────────────────────────────────────────────────

const MIN_DAY = -719_162 // 0001-01-01
const MAX_DAY = 2_932_896 // 9999-12-31

/** A column's values as CSV text: a range chosen first (narrow, wide, negative), then values in it. */
function columnOf (kind: Kind): fc.Arbitrary<Array<string | null>> {
  const values = (value: fc.Arbitrary<string>): fc.Arbitrary<Array<string | null>> =>
    fc.array(fc.option(value, { freq: 6, nil: null }), { minLength: 1, maxLength: 120 })
  switch (kind) {
    case 'integer':
      return fc.oneof(
        fc.tuple(fc.integer({ min: -30, max: 30 }), fc.integer({ min: 0, max: 40 })),
        fc.tuple(fc.integer({ min: -1_000_000, max: 1_000_000 }), fc.integer({ min: 0, max: 5_000_000 })),
      ).chain(([lo, width]) => values(fc.integer({ min: lo, max: lo + width }).map(String)))
        .filter((column) => column.some((value) => value !== null))
    case 'numeric':
      return fc.tuple(fc.integer({ min: -100_000, max: 100_000 }), fc.integer({ min: 0, max: 200_000 }), fc.integer({ min: 1, max: 3 }))
        .chain(([lo, width, scale]) => values(fc.integer({ min: lo, max: lo + width }).map((units) => {
          const text = (Math.abs(units) / 10 ** scale).toFixed(scale)
          return units < 0 ? `-${text}` : text // always with a fraction: the column stays numeric
        })))
        .filter((column) => column.some((value) => value !== null))
    case 'date':
      return fc.tuple(fc.integer({ min: MIN_DAY, max: MAX_DAY - 5000 }), fc.integer({ min: 0, max: 5000 }))
        .chain(([lo, width]) => values(fc.integer({ min: lo, max: lo + width }).map((day) => textOf('date', BigInt(day)))))
        .filter((column) => column.some((value) => value !== null))
    case 'timestamp':
      return fc.tuple(fc.bigInt({ min: 0n, max: 86_400_000_000n * 40_000n }), fc.bigInt({ min: 0n, max: 86_400_000_000n * 3n }))
        .chain(([lo, width]) => values(fc.bigInt({ min: lo, max: lo + width }).map((us) => textOf('timestamp', us).replace('+00:00', 'Z'))))
        .filter((column) => column.some((value) => value !== null))
  }
}

const KINDS: Kind[] = ['integer', 'numeric', 'date', 'timestamp']

function csvOf (columns: Record<string, Array<string | null>>): string {
  const names = Object.keys(columns)
  const rows = Math.max(...names.map((name) => columns[name]!.length))
  const lines = [names.join(',')]
  for (let row = 0; row < rows; row++) lines.push(names.map((name) => columns[name]![row] ?? '').join(','))
  return `${lines.join('\n')}\n`
}

describe('histograms in the statistics', () => {
  it('count each bin as the oracle does, for generated columns of every type', async () => {
    await fc.assert(fc.asyncProperty(fc.tuple(...KINDS.map(columnOf)), async (generated) => {
      // Equal lengths: a shorter column is padded with missing values, which are in no bin.
      const length = Math.max(...generated.map((column) => column.length))
      const columns = Object.fromEntries(KINDS.map((kind, i) => [kind, [...generated[i]!, ...new Array<null>(length - generated[i]!.length).fill(null)]]))
      const stats = await statsOf(csvOf(columns))
      for (const kind of KINDS) assertHistogram(stats, kind, kind, columns[kind]!)
    }), { seed: SEED, numRuns: 25, endOnFailure: true })
  })

  it('gives one bin when min = max, whatever the type', async () => {
    const columns = { i: ['7', '7', null, '7'], n: ['2.5', '2.5', '2.5', null], d: ['2026-05-19', null, '2026-05-19', '2026-05-19'], t: ['2026-05-19T10:00:00.5Z', '2026-05-19T10:00:00.5Z', null, null] }
    const stats = await statsOf(csvOf(columns))
    assert.deepEqual(stats.columns.i.histogram, { bins: [{ from: 7, to: 7, count: 3 }] })
    assert.deepEqual(stats.columns.n.histogram, { bins: [{ from: 2.5, to: 2.5, count: 3 }] })
    assert.deepEqual(stats.columns.d.histogram, { bins: [{ from: '2026-05-19', to: '2026-05-19', count: 3 }] })
    assert.deepEqual(stats.columns.t.histogram, { bins: [{ from: '2026-05-19T10:00:00.5+00:00', to: '2026-05-19T10:00:00.5+00:00', count: 2 }] })
  })

  it('bins integers on whole numbers, one per value when there are few, negative ones alike', async () => {
    const columns = { few: ['1', '2', '2', '3', null], negative: ['-3', '-1', '-1', '0', '2'], many: Array.from({ length: 101 }, (_, i) => String(i - 150)) }
    const stats = await statsOf(csvOf(columns))
    assert.deepEqual(stats.columns.few.histogram.bins, [{ from: 1, to: 2, count: 1 }, { from: 2, to: 3, count: 2 }, { from: 3, to: 3, count: 1 }])
    // 4 distinct values over -3..2 (6 whole numbers): bins of 2 numbers.
    assert.deepEqual(stats.columns.negative.histogram.bins, [{ from: -3, to: -1, count: 1 }, { from: -1, to: 1, count: 3 }, { from: 1, to: 2, count: 1 }])
    // 101 values over -150..-50: 17 bins of 6 numbers, the last one holding 5.
    assert.equal(stats.columns.many.histogram.bins.length, 17)
    assert.ok(stats.columns.many.histogram.bins.every((bin: Bin, i: number, bins: Bin[]) => bin.count === (i === bins.length - 1 ? 5 : 6)))
    assert.deepEqual(stats.columns.many.histogram.bins.at(-1), { from: -54, to: -50, count: 5 })
    for (const name of Object.keys(columns) as Array<keyof typeof columns>) assertHistogram(stats, name, 'integer', columns[name])
  })

  it('leaves missing values out, and survives the extremes of every type', async () => {
    const columns = {
      big: ['-999999999999999999', '999999999999999999', '0', null],
      huge: ['1e300', '-1e300', '1e-400', '0.5', null],
      tiny: ['1e-400', '0', '2e-400', null],
      days: ['0001-01-01', '9999-12-31', '2026-05-19', null],
      instants: ['0001-01-01T00:00:00Z', '9999-12-31T23:59:59.999999Z', '1969-12-31T23:59:59.999999Z', null],
      // Not numbers to PostgreSQL's numeric and the codec alike before PG 14; now numeric accepts
      // them, the codec still does not: the column is text, with no histogram, and nothing fails.
      odd: ['Infinity', '-Infinity', 'NaN', '1'],
      empty: [null, null, null, null],
    }
    const stats = await statsOf(csvOf(columns))
    assertHistogram(stats, 'big', 'integer', columns.big)
    assertHistogram(stats, 'huge', 'numeric', columns.huge)
    assertHistogram(stats, 'tiny', 'numeric', columns.tiny)
    assertHistogram(stats, 'days', 'date', columns.days)
    assertHistogram(stats, 'instants', 'timestamp', columns.instants)
    assert.deepEqual(stats.columns.huge.histogram.bins, [{ from: -1e300, to: -5e299, count: 1 }, { from: -5e299, to: 0, count: 0 }, { from: 0, to: 5e299, count: 2 }, { from: 5e299, to: 1e300, count: 1 }])
    assert.deepEqual(stats.columns.tiny.histogram.bins.map((bin: Bin) => bin.count), [1, 1, 1], 'bins narrower than a double can tell apart still count (their edges read 0)')
    assert.equal(stats.columns.odd.type, 'text')
    assert.equal(stats.columns.odd.histogram, undefined)
    assert.equal(stats.columns.empty.histogram, undefined, `an all-missing column is ${stats.columns.empty.type}`)
    assert.equal(stats.columns.empty.nulls, stats.count)
  })
})
