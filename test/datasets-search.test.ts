// Full-text search primitives (src/routes/datasets/search.ts) against real tables made by uploads
// through the HTTP API, after the statistics job has built their GIN indexes: the rows each
// condition selects are compared with an oracle written here from the documented rules ('simple'
// lowercases and splits on non-word characters; websearch syntax: words, "phrases", or, -word) on
// rows fast-check generates with a fixed seed; hostile queries never raise; `explain` shows the
// indexes used on 50,000 rows; a 2 MB value does not fail the job; no text columns, no index.
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import fc from 'fast-check'
import type { Fragment } from 'postgres'
import { createApiKeysRepository } from '../src/auth/api-keys.ts'
import { createDatasetsRepository } from '../src/routes/datasets/repository.ts'
import type { DatasetColumn } from '../src/routes/datasets/schemas.ts'
import { matchesColumnSearch, matchesSearch, searchRank } from '../src/routes/datasets/search.ts'
import { rowsTable, type RowsTable } from '../src/routes/datasets/table.ts'
import { buildTestApp, listen } from './helpers/app.ts'
import { json, until } from './helpers/http.ts'

const SEED = Number(process.env.FC_SEED ?? 20_260_519)

const { app, sql } = await buildTestApp({ after }, {}, { worker: true })
const base = await listen(app)
const { key } = await createApiKeysRepository(sql).create('search tests')
const datasets = createDatasetsRepository(sql)

interface Uploaded { id: number, table: RowsTable, columns: DatasetColumn[] }

/** Uploads a CSV and waits for its statistics job to have finished: indexes built, table analysed. */
async function uploaded (csv: string): Promise<Uploaded> {
  const response = await fetch(`${base}/datasets`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'text/csv' }, body: csv })
  const answer = await json(response)
  assert.equal(response.status, 201, JSON.stringify(answer).slice(0, 500))
  const id: number = answer.dataset.id
  await until('the statistics job', async () => {
    const [job] = await sql<Array<{ state: string }>>`
      select state::text as state from pgboss.job where name = 'compute_dataset_stats' and data->>'dataset_id' = ${String(id)}`
    assert.notEqual(job?.state, 'failed', `the statistics job of data set ${id} failed`)
    return job?.state === 'completed'
  }, 120_000)
  return { id, table: rowsTable(id), columns: await datasets.columns(id) }
}

async function rowsWhere ({ table }: Uploaded, condition: Fragment): Promise<number[]> {
  const rows = await sql<Array<{ row: string }>>`select _row as row from ${table.identifier(sql)} where ${condition} order by _row`
  return rows.map(({ row }) => Number(row))
}

async function indexesOf ({ table }: Uploaded): Promise<string[]> {
  const rows = await sql<Array<{ name: string }>>`select indexname as name from pg_indexes where schemaname = 'dataset_rows' and tablename = ${table.relation} order by 1`
  return rows.map(({ name }) => name)
}

const column = (dataset: Uploaded, name: string): DatasetColumn => dataset.columns.find((candidate) => candidate.name === name)!

/** A CSV field, always quoted. */
const field = (text: string | null): string => (text === null ? '' : `"${text.replaceAll('"', '""')}"`)

// ─── The oracle ────────────────────────────────────────────────────────────────────────────────

/** The words of a text as 'simple' reads ASCII: lowercased, split on everything but letters and digits. */
const wordsOf = (text: string): string[] => text.toLowerCase().split(/[^a-z0-9]+/).filter((word) => word !== '')

type Query = { kind: 'word', word: string } | { kind: 'and' | 'or', words: [string, string] } | { kind: 'not', word: string } | { kind: 'and-not', words: [string, string] } | { kind: 'phrase', words: [string, string] }

function queryText (query: Query): string {
  switch (query.kind) {
    case 'word': return query.word
    case 'and': return `${query.words[0]} ${query.words[1]}`
    case 'or': return `${query.words[0]} or ${query.words[1]}`
    case 'not': return `-${query.word}`
    case 'and-not': return `${query.words[0]} -${query.words[1]}`
    case 'phrase': return `"${query.words[0]} ${query.words[1]}"`
  }
}

function matches (query: Query, words: string[]): boolean {
  const has = (word: string): boolean => words.includes(word.toLowerCase())
  switch (query.kind) {
    case 'word': return has(query.word)
    case 'and': return has(query.words[0]) && has(query.words[1])
    case 'or': return has(query.words[0]) || has(query.words[1])
    case 'not': return !has(query.word)
    case 'and-not': return has(query.words[0]) && !has(query.words[1])
    case 'phrase': {
      const [first, second] = query.words.map((word) => word.toLowerCase())
      return words.some((word, i) => word === first && words[i + 1] === second)
    }
  }
}

// ─── Generators ────────────────────────────────────────────────────────────────────────────────

const VOCABULARY = ['apple', 'banana', 'cherry', 'delta', 'echo', 'fig', 'grape', 'hotel', 'india', 'juliet', 'kilo', 'lima', 'mango', 'nectar', 'oscar', 'papa', 'quebec', 'romeo', 'x', 'yz']
const ABSENT = ['zulu', 'nowhere']
const SEPARATORS = [' ', ' ', ' ', ', ', '; ', '! ', '? ', ' (', ') ', ' "', '" ', '\n', '\t', ' & ', ' | ', ' :* ', ' <-> ']

const wordArbitrary = fc.tuple(fc.constantFrom(...VOCABULARY), fc.constantFrom('lower', 'upper', 'title'))
  .map(([word, style]) => (style === 'lower' ? word : style === 'upper' ? word.toUpperCase() : word[0]!.toUpperCase() + word.slice(1)))
const cellArbitrary = fc.option(fc.array(fc.tuple(wordArbitrary, fc.constantFrom(...SEPARATORS)), { minLength: 1, maxLength: 8 })
  .map((parts) => parts.map(([word, separator]) => word + separator).join('').trim()), { freq: 5, nil: null })
  .map((cell) => (cell === '' ? null : cell))
const queryWord = fc.oneof({ weight: 5, arbitrary: wordArbitrary }, { weight: 1, arbitrary: fc.constantFrom(...ABSENT) })
const queryArbitrary: fc.Arbitrary<Query> = fc.oneof(
  { weight: 4, arbitrary: queryWord.map((word) => ({ kind: 'word' as const, word })) },
  fc.tuple(queryWord, queryWord).map((words) => ({ kind: 'and' as const, words })),
  fc.tuple(queryWord, queryWord).map((words) => ({ kind: 'or' as const, words })),
  queryWord.map((word) => ({ kind: 'not' as const, word })),
  fc.tuple(queryWord, queryWord).map((words) => ({ kind: 'and-not' as const, words })),
  fc.tuple(queryWord, queryWord).map((words) => ({ kind: 'phrase' as const, words })),
)

const TEXT_COLUMNS = ['title', 'body', 'note']

describe('full-text search primitives', async () => {
  const generated = fc.sample(fc.array(fc.tuple(cellArbitrary, cellArbitrary, cellArbitrary), { minLength: 150, maxLength: 150 }), { seed: SEED, numRuns: 1 })[0]!
  // Every text column holds text somewhere, so that each is a text column with an index of its own.
  generated[0] = ['Apple banana', 'cherry, Delta', 'echo'] as [string, string, string]
  const csv = `n,${TEXT_COLUMNS.join(',')}\n${generated.map((cells, i) => [String(i), ...cells.map(field)].join(',')).join('\n')}\n`
  const dataset = await uploaded(csv)
  const rows = generated.map((cells, i) => ({ row: i + 1, cells }))

  it('builds one GIN index on the row\'s document and one on each text column\'s', async () => {
    const indexes = await indexesOf(dataset)
    const relation = dataset.table.relation
    for (const name of [`${relation}_search`, ...TEXT_COLUMNS.map((name) => `${relation}_${dataset.table.column(column(dataset, name).position)}_search`)]) {
      assert.ok(indexes.includes(name), `${name} among ${indexes.join(', ')}`)
    }
  })

  it('matches the rows the oracle does, across all text columns and in one column', async () => {
    await fc.assert(fc.asyncProperty(queryArbitrary, fc.constantFrom(...TEXT_COLUMNS), async (query, name) => {
      const text = queryText(query)
      // The row's document: its text columns joined by a space, a missing one as empty text.
      const expected = rows.filter(({ cells }) => matches(query, wordsOf(cells.map((cell) => cell ?? '').join(' ')))).map(({ row }) => row)
      assert.deepEqual(await rowsWhere(dataset, matchesSearch(sql, dataset.table, dataset.columns, text)), expected, `_q=${text}`)
      // One column: a missing value matches nothing, not even -word.
      const index = TEXT_COLUMNS.indexOf(name)
      const inColumn = rows.filter(({ cells }) => cells[index] !== null && matches(query, wordsOf(cells[index]!))).map(({ row }) => row)
      assert.deepEqual(await rowsWhere(dataset, matchesColumnSearch(sql, dataset.table, dataset.columns, column(dataset, name), text)), inColumn, `${name}__search=${text}`)
    }), { seed: SEED, numRuns: 150, endOnFailure: true })
  })

  it('ranks the rows of a query: positive for a match, higher for more occurrences', async () => {
    const ranked = await uploaded('a,b\n"Apple banana",x\n"apple apple apple",y\n"cherry",\n,\n')
    const q = 'apple'
    const found = await sql<Array<{ row: string, rank: number }>>`
      select _row as row, ${searchRank(sql, ranked.table, ranked.columns, q)} as rank from ${ranked.table.identifier(sql)}
      order by rank desc, _row`
    assert.deepEqual(found.map(({ row }) => Number(row)), [2, 1, 3, 4])
    assert.ok(found[0]!.rank > found[1]!.rank && found[1]!.rank > 0)
    assert.deepEqual(found.slice(2).map(({ rank }) => rank), [0, 0])
    const none = await sql`select ${searchRank(sql, ranked.table, ranked.columns, '  !! ')} as rank from ${ranked.table.identifier(sql)}`
    assert.ok(none.every(({ rank }) => rank === 0), 'nothing to search for: every rank is 0')
  })

  it('never raises on hostile queries; a query with nothing to search for matches every row', async () => {
    const all = rows.map(({ row }) => row)
    const hostile = ['', '   ', '!!!', ':*', 'apple:*', '&|!()', '<->', '"', '"apple', 'apple"', "'", '\\', 'or', 'or or', '-', '--apple', '-or', 'apple & | banana', '!(apple)', 'apple:A', 'a'.repeat(3000), 'apple '.repeat(1700),
      '\u00e9t\u00e9', '\u{1F600}', 'x'.repeat(2047), '\u0001\u0002', "apple'); drop table x; --", 'apple\\:*']
    const punctuation = fc.string({ unit: fc.constantFrom(...' !"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~\t\n'.split('')), maxLength: 200 })
    const anything = fc.string({ unit: fc.oneof(fc.constantFrom(...':*&|!()<->"\' -'.split('')), fc.constantFrom('apple', 'or', 'and', 'x'), fc.constantFrom('é', '\u{1F600}', 'ß')), maxLength: 2000 })
    const long = fc.string({ unit: 'grapheme', minLength: 10_000, maxLength: 10_000 }).filter((text) => !text.includes('\0'))
    const queries = [...hostile, ...fc.sample(punctuation, { seed: SEED, numRuns: 40 }), ...fc.sample(anything, { seed: SEED, numRuns: 40 }), ...fc.sample(long, { seed: SEED, numRuns: 3 })]
    const text = column(dataset, 'body')
    for (const q of queries) {
      const shown = JSON.stringify(q.slice(0, 80))
      const found = await rowsWhere(dataset, matchesSearch(sql, dataset.table, dataset.columns, q))
      await rowsWhere(dataset, matchesColumnSearch(sql, dataset.table, dataset.columns, text, q))
      await sql`select ${searchRank(sql, dataset.table, dataset.columns, q)} from ${dataset.table.identifier(sql)} order by 1 desc limit 5`
      if (!/[A-Za-z0-9\u0080-\u{10FFFF}]/u.test(q)) {
        assert.deepEqual(found, all, `${shown}: nothing to search for, every row`)
        const [{ count }] = await sql<[{ count: number }]>`select numnode(websearch_to_tsquery('simple', ${q}))::int as count`
        assert.equal(count, 0, `${shown}: PostgreSQL finds no word in it either`)
      }
    }
    assert.deepEqual(await rowsWhere(dataset, matchesSearch(sql, dataset.table, dataset.columns, 'x'.repeat(3000))), [], 'a word longer than any indexed one matches nothing')
  })

  it('answers _q, column__search and _sort=_rank through /rows and /export: the oracle\'s rows, best first', async () => {
    /** Every page of a rows query, walked with a small limit: the `n` of each row, in order. */
    const walk = async (query: string): Promise<number[]> => {
      const found: number[] = []
      for (let cursor: string | null = null; ;) {
        const response = await fetch(`${base}/datasets/${dataset.id}/rows?${query}&_limit=7${cursor === null ? '' : `&_cursor=${cursor}`}`)
        const page = await json(response)
        assert.equal(response.status, 200, JSON.stringify(page))
        found.push(...page.rows.map((row: { n: number }) => row.n))
        cursor = page.next_cursor
        if (cursor === null) return found
      }
    }
    await fc.assert(fc.asyncProperty(queryArbitrary, fc.constantFrom(...TEXT_COLUMNS), async (query, name) => {
      const text = encodeURIComponent(queryText(query))
      const expected = rows.filter(({ cells }) => matches(query, wordsOf(cells.map((cell) => cell ?? '').join(' ')))).map(({ row }) => row - 1)
      assert.deepEqual(await walk(`_q=${text}`), expected, `_q=${text}`)
      // By rank: the same rows, in the order of PostgreSQL's rank (descending, then row descending).
      const ranked = await sql<Array<{ n: string }>>`
        select c1 as n from ${dataset.table.identifier(sql)} where ${matchesSearch(sql, dataset.table, dataset.columns, queryText(query))}
        order by ${searchRank(sql, dataset.table, dataset.columns, queryText(query))} desc, _row desc`
      assert.deepEqual(await walk(`_q=${text}&_sort=_rank`), ranked.map(({ n }) => Number(n)), `_q=${text}&_sort=_rank`)
      const index = TEXT_COLUMNS.indexOf(name)
      const inColumn = rows.filter(({ cells }) => cells[index] !== null && matches(query, wordsOf(cells[index]!))).map(({ row }) => row - 1)
      assert.deepEqual(await walk(`${name}__search=${text}`), inColumn, `${name}__search=${text}`)
      // The export of the same view: the same rows in the same order.
      const exported = await (await fetch(`${base}/datasets/${dataset.id}/export?_format=ndjson&_select=n&_q=${text}&_sort=_rank`)).text()
      assert.deepEqual(exported.split('\n').filter((line) => line !== '').map((line) => (JSON.parse(line) as { n: number }).n), ranked.map(({ n }) => Number(n)))
    }), { seed: SEED, numRuns: 40, endOnFailure: true })
    const refused = await fetch(`${base}/datasets/${dataset.id}/rows?_sort=_rank`)
    assert.equal(refused.status, 400)
    assert.match((await json(refused)).detail, /give _q too/)
  })

  it('refuses a NUL character as a 400 naming the parameter, before PostgreSQL sees it', () => {
    assert.throws(() => matchesSearch(sql, dataset.table, dataset.columns, 'apple\0'), (error: any) => error.status === 400 && error.extra.errors[0].pointer === '/_q')
    assert.throws(() => matchesColumnSearch(sql, dataset.table, dataset.columns, column(dataset, 'body'), '\0'), (error: any) => error.status === 400 && error.extra.errors[0].pointer === '/body__search')
    assert.throws(() => searchRank(sql, dataset.table, dataset.columns, '\ud800'), (error: any) => error.status === 400)
    assert.throws(() => matchesColumnSearch(sql, dataset.table, dataset.columns, column(dataset, 'n'), 'apple'), (error: any) => error.status === 400 && /text columns/.test(error.message))
  })

  it('uses the row\'s document for one column when it is the only text column, missing values matching nothing', async () => {
    const single = await uploaded('n,t\n1,"Apple pie"\n2,\n3,banana\n')
    assert.deepEqual((await indexesOf(single)).filter((name) => name.endsWith('_search')), [`${single.table.relation}_search`])
    const t = column(single, 't')
    assert.deepEqual(await rowsWhere(single, matchesColumnSearch(sql, single.table, single.columns, t, 'apple')), [1])
    assert.deepEqual(await rowsWhere(single, matchesColumnSearch(sql, single.table, single.columns, t, '-apple')), [3])
    assert.deepEqual(await rowsWhere(single, matchesSearch(sql, single.table, single.columns, '-apple')), [2, 3])
  })

  it('builds no search index without text columns, where a query with words matches nothing', async () => {
    const numbers = await uploaded('a,b\n1,2026-01-01\n2,2026-01-02\n')
    assert.deepEqual((await indexesOf(numbers)).filter((name) => name.endsWith('_search')), [])
    assert.deepEqual(await rowsWhere(numbers, matchesSearch(sql, numbers.table, numbers.columns, '1')), [])
    assert.deepEqual(await rowsWhere(numbers, matchesSearch(sql, numbers.table, numbers.columns, '')), [1, 2])
    const [found] = await sql<[{ rank: number }]>`select ${searchRank(sql, numbers.table, numbers.columns, '1')} as rank`
    assert.equal(found.rank, 0)
  })

  it('indexes a 2 MB value (its first 100,000 characters) instead of failing the statistics job', async () => {
    // 2 MB of distinct words: its whole tsvector would be over PostgreSQL's 1 MB.
    const words = Array.from({ length: 360_000 }, (_, i) => `w${i.toString(36)}`)
    const long = ['needle', ...words, 'haystackend'].join(' ')
    assert.ok(long.length > 2_000_000)
    const big = await uploaded(`a,b\n"${long}",first\nshort,second\n`)
    assert.ok((await indexesOf(big)).includes(`${big.table.relation}_search`))
    const a = sql.unsafe(big.table.column(column(big, 'a').position))
    await assert.rejects(sql`select to_tsvector('simple', ${a}) from ${big.table.identifier(sql)}`, (error: any) => error.code === '54000', 'without the cut, to_tsvector refuses it')
    assert.deepEqual(await rowsWhere(big, matchesSearch(sql, big.table, big.columns, 'needle')), [1])
    assert.deepEqual(await rowsWhere(big, matchesSearch(sql, big.table, big.columns, 'first')), [], 'a column after the cut of the row\'s document is not searched in it')
    assert.deepEqual(await rowsWhere(big, matchesColumnSearch(sql, big.table, big.columns, column(big, 'b'), 'first')), [1], '… but is in its own')
    assert.deepEqual(await rowsWhere(big, matchesSearch(sql, big.table, big.columns, 'haystackend')), [], 'words past 100,000 characters are not searched')
    assert.deepEqual(await rowsWhere(big, matchesSearch(sql, big.table, big.columns, 'second')), [2])
  })

  it('uses the GIN indexes on 50,000 rows for a selective word, once the job has analysed the table', async () => {
    const lines = ['id,title,body']
    for (let i = 0; i < 50_000; i++) {
      const rare = i % 16_000 === 7 ? ' platypus' : ''
      lines.push(`${i},"${VOCABULARY[i % VOCABULARY.length]} ${VOCABULARY[(i * 7) % VOCABULARY.length]}${rare}","${VOCABULARY[(i * 3) % VOCABULARY.length]} common words ${i % 100}"`)
    }
    const large = await uploaded(`${lines.join('\n')}\n`)
    const plan = async (condition: Fragment): Promise<string> => {
      const [row] = await sql<[{ 'QUERY PLAN': unknown }]>`explain (format json) select _row from ${large.table.identifier(sql)} where ${condition} order by _row limit 51`
      return JSON.stringify(row['QUERY PLAN'])
    }
    const relation = large.table.relation
    const whole = matchesSearch(sql, large.table, large.columns, 'Platypus')
    assert.match(await plan(whole), new RegExp(`"Index Name":"${relation}_search"`))
    assert.deepEqual(await rowsWhere(large, whole), [8, 16_008, 32_008, 48_008])
    const title = matchesColumnSearch(sql, large.table, large.columns, column(large, 'title'), 'platypus')
    assert.match(await plan(title), new RegExp(`"Index Name":"${relation}_${large.table.column(column(large, 'title').position)}_search"`))
    assert.deepEqual(await rowsWhere(large, title), [8, 16_008, 32_008, 48_008])
    assert.deepEqual(await rowsWhere(large, matchesColumnSearch(sql, large.table, large.columns, column(large, 'body'), 'platypus')), [])
  })
})
