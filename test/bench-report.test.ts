// The report writer of the benchmark suite: Markdown rows and ratios, escaping, charts (Vega-Lite
// rendered to SVG) that a browser will actually render (well-formed XML) and that show what was
// measured, the BENCHMARKS.md marker update, and byte-identical output for the same results.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { renderCharts, renderMarkdown, SERVER_COLORS, updateBenchmarksFile } from '../bench/report.ts'
import type { BenchResults, LoadSummary } from '../bench/results.ts'
import { renderVegaLite } from '../bench/vega-svg.ts'

function summary (rps: number, p50: number, p90: number, p99: number, spread = 0.05): LoadSummary {
  const run = (factor: number) => ({ rps: rps * factor, p50, p90, p99, errors: 0, non2xx: 0 })
  return { runs: [run(1 - spread), run(1), run(1 + spread)], median: run(1), rpsMin: rps * (1 - spread), rpsMax: rps * (1 + spread) }
}

function fixture (): BenchResults {
  return {
    startedAt: '2026-11-25T14:03:10.000Z',
    finishedAt: '2026-11-25T14:15:13.000Z',
    quick: false,
    durationSeconds: 10,
    machine: { cpus: 2, cpuModel: 'AMD EPYC 7B13', memoryGiB: 24, os: 'Linux 6.8', node: '24.21.0', postgres: '18.4', python: '3.12.3', pinned: 'server on CPU 0, load generator on CPU 1 (taskset)' },
    throughput: [
      {
        name: 'hello JSON',
        group: 'hello',
        path: '/hello',
        connections: 100,
        durationSeconds: 10,
        results: {
          'FastAPI (shared pool)': summary(8000, 12, 15, 20),
          'data-api': summary(20_000, 4.5, 6, 9.25),
          'raw node:http': summary(25_000, 3.9, 5, 8),
        },
      },
      {
        name: 'GET /users',
        group: 'database',
        path: '/users?limit=10',
        connections: 50,
        durationSeconds: 10,
        results: {
          'data-api': summary(12_000, 4, 6, 11),
          'bare Fastify + postgres.js': summary(13_000, 3.7, 5.5, 10),
          'FastAPI (shared pool)': summary(3000, 16, 20, 31),
          'FastAPI (pool per request)': summary(1500, 33, 40, 120),
        },
      },
      {
        name: 'rows page',
        group: 'data api',
        path: '/datasets/1/rows?limit=100&sort=<score>',
        connections: 50,
        durationSeconds: 10,
        results: { 'data-api': { ...summary(5000, 9, 12, 18), runs: [{ rps: 5000, p50: 9, p90: 12, p99: 18, errors: 2, non2xx: 7 }] } },
      },
    ],
    lesson: [
      { claim: '10 concurrent /sync vs /async', lessonSays: '20 s vs 2 s', dataApi: '2.03 s vs 2.01 s', fastapi: '2.04 s vs 2.02 s', verdict: 'no difference | the thread pool hides it' },
    ],
    targets: [
      { target: 'hello JSON ≥ 2× FastAPI', measured: '20,000 vs 8,000 req/s', ratio: 2.5, met: true },
      { target: 'p99 /users < 10 ms', measured: '11 ms', ratio: null, met: false },
    ],
    notes: ['One machine, two cores: ratios matter more than absolute numbers.'],
  }
}

/**
 * A small well-formedness check, enough for the SVG we write: one root, properly nested and
 * closed tags, quoted attributes without `<`, and `&` only in the five predefined or numeric
 * entities.
 */
function assertWellFormedXml (text: string): void {
  const entity = /&(?:amp|lt|gt|quot|apos|#\d+|#x[\da-f]+);/gi
  const tag = /^<(\/?)([A-Za-z][\w:.-]*)((?:\s+[\w:.-]+="[^"<]*")*)\s*(\/?)>$/
  const stack: string[] = []
  let roots = 0
  let last = 0
  for (const match of text.matchAll(/<[^>]*>/g)) {
    const between = text.slice(last, match.index)
    assert.doesNotMatch(between.replace(entity, ''), /[<&]/, `bad character data: ${between}`)
    if (stack.length === 0) assert.match(between, /^\s*$/, 'text outside the root element')
    last = match.index + match[0].length
    const parts = tag.exec(match[0])
    assert.ok(parts !== null, `malformed tag: ${match[0]}`)
    const [, closing, name, attributes, selfClosing] = parts
    assert.doesNotMatch(attributes!.replace(entity, ''), /&/, `bad attribute: ${match[0]}`)
    const names = [...attributes!.matchAll(/([\w:.-]+)=/g)].map((a) => a[1])
    assert.equal(new Set(names).size, names.length, `duplicate attribute: ${match[0]}`)
    if (closing === '/') {
      assert.equal(stack.pop(), name, `mismatched </${name}>`)
    } else {
      if (stack.length === 0) roots++
      if (selfClosing !== '/') stack.push(name!)
    }
  }
  assert.match(text.slice(last), /^\s*$/, 'text after the root element')
  assert.deepEqual(stack, [], 'unclosed elements')
  assert.equal(roots, 1, 'exactly one root element')
}

describe('renderMarkdown', () => {
  const markdown = renderMarkdown(fixture())
  const lines = markdown.split('\n')
  const row = (scenario: string, server: string) => lines.find((line) => line.startsWith(`| ${scenario} |`) && line.includes(`| ${server} |`))

  it('heads the block with the date, the kind of run and the durations, then the machine', () => {
    assert.equal(lines[0], '### Run of 2026-11-25 14:03 UTC — full, 10 s per load run, 12 min 3 s in all')
    assert.match(markdown, /^Machine: 2 × AMD EPYC 7B13, 24 GiB, Linux 6\.8; Node 24\.21\.0, PostgreSQL 18\.4, Python 3\.12\.3; server on CPU 0, load generator on CPU 1 \(taskset\)\.$/m)
  })

  it('writes one throughput row per scenario and server, with thousands separators and ratios', () => {
    assert.equal(row('hello JSON', 'data-api'), '| hello JSON | `/hello` | 100 | data-api | **20,000** | 19,000–21,000 | 4.50 | 6.00 | 9.25 | 0 / 0 | 2.50× | 0.80× |')
    assert.equal(row('hello JSON', 'raw node:http'), '| hello JSON | `/hello` | 100 | raw node:http | 25,000 | 23,750–26,250 | 3.90 | 5.00 | 8.00 | 0 / 0 | 3.13× | 1.00× |')
    // Against the faster FastAPI variant (shared pool), not the slower one; no raw node in this scenario.
    assert.equal(row('GET /users', 'data-api'), '| GET /users | `/users?limit=10` | 50 | data-api | **12,000** | 11,400–12,600 | 4.00 | 6.00 | 11.0 | 0 / 0 | 4.00× | — |')
    assert.equal(row('GET /users', 'FastAPI (pool per request)'), '| GET /users | `/users?limit=10` | 50 | FastAPI (pool per request) | 1,500 | 1,425–1,575 | 33.0 | 40.0 | 120 | 0 / 0 | 0.50× | — |')
    assert.equal(row('rows page', 'data-api')?.includes('| 2 / 7 | — | — |'), true, 'errors and non-2xx of the runs, no peers')
    // Servers in the fixed order, whatever the order of the results object.
    const helloServers = lines.filter((line) => line.startsWith('| hello JSON |')).map((line) => line.split(' | ')[3])
    assert.deepEqual(helloServers, ['data-api', 'raw node:http', 'FastAPI (shared pool)'])
    assert.match(markdown, /^\| scenario \| path \| conn\. \| server \| req\/s \(median\) \|.*\| × FastAPI \| × raw node \|$/m)
  })

  it('writes the lesson, the targets and the notes, escaping | in cells', () => {
    assert.ok(lines.includes('| 10 concurrent /sync vs /async | 20 s vs 2 s | 2.03 s vs 2.01 s | 2.04 s vs 2.02 s | no difference \\| the thread pool hides it |'))
    assert.ok(lines.includes('| hello JSON ≥ 2× FastAPI | 20,000 vs 8,000 req/s | 2.50× | ✔ |'))
    assert.ok(lines.includes('| p99 /users < 10 ms | 11 ms | — | ✘ |'))
    assert.ok(lines.includes('- One machine, two cores: ratios matter more than absolute numbers.'))
    // Every table row has as many unescaped | as its header.
    for (const table of markdown.split('\n\n').filter((part) => part.startsWith('|'))) {
      const counts = table.split('\n').map((line) => line.replace(/\\\|/g, '').split('|').length)
      assert.equal(new Set(counts).size, 1, table)
    }
  })

  it('says so when a section was not measured, and leaves out the ratio columns without peers', () => {
    const results = fixture()
    results.lesson = []
    results.throughput = results.throughput.slice(2)
    const text = renderMarkdown(results)
    assert.match(text, /#### The lesson's claims\n\n_Not measured in this run\._/)
    assert.match(text, /^\| scenario \|.*\| errors \/ non-2xx \|$/m, 'no ratio columns')
  })
})

/** The value labels of a chart (text marks), by their description: where each one starts, in px. */
function valueLabels (svg: string): Map<string, { x: number, text: string }> {
  const labels = new Map<string, { x: number, text: string }>()
  for (const [, description, x, text] of svg.matchAll(/<text aria-label="([^"]*)" role="graphics-symbol" aria-roledescription="text mark"[^>]*? transform="translate\(([\d.-]+),[\d.-]+\)"[^>]*>([^<]*)<\/text>/g)) {
    labels.set(description!, { x: Number(x), text: text! })
  }
  return labels
}

/** The bars of a chart: their description and fill. */
function bars (svg: string): Array<{ description: string, fill: string, opacity: number }> {
  return [...svg.matchAll(/<path aria-label="([^"]*)" role="graphics-symbol" aria-roledescription="bar" d="[^"]*" fill="(#[\dA-Fa-f]{6})"(?: opacity="([\d.]+)")?/g)]
    .map(([, description, fill, opacity]) => ({ description: description!, fill: fill!, opacity: opacity === undefined ? 1 : Number(opacity) }))
}

describe('renderCharts', async () => {
  const charts = await renderCharts(fixture())
  const byName = new Map(charts.map((chart) => [chart.name, chart.svg]))

  it('draws the headline, then a throughput and a latency chart per group', () => {
    assert.deepEqual(charts.map((chart) => chart.name), [
      'headline.svg',
      'throughput-hello.svg', 'latency-hello.svg',
      'throughput-database.svg', 'latency-database.svg',
      'throughput-data-api.svg', 'latency-data-api.svg',
    ])
  })

  it('writes standalone, well-formed SVG', () => {
    for (const { name, svg } of charts) {
      assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"[^>]* width="(\d+)" height="(\d+)" viewBox="0 0 \1 \2"/, name)
      assert.equal(svg.match(/<text[\s>]/g)?.length, svg.match(/<\/text>/g)?.length, name)
      assertWellFormedXml(svg)
      // Opaque, so that it stays readable on a dark page; nothing to fetch.
      assert.match(svg, /^<svg[^>]*><rect width="\d+" height="\d+" fill="#ffffff"\/>/, name)
      assert.doesNotMatch(svg, /(?:href|src)="(?!#)/, name)
    }
  })

  it('titles each chart, says which way is better and names the run and the machine', () => {
    const headline = byName.get('headline.svg')!
    for (const text of ['data-api and its peers: requests per second', 'Requests per second, median of 3 runs of 10 s', 'higher is better', 'requests per second']) {
      assert.ok(headline.includes(`>${text}<`), `headline shows ${text}`)
    }
    assert.ok(headline.includes('data-api bench, 2026-11-25 14:03 UTC, full run · 2 × AMD EPYC 7B13, 24 GiB'), 'the footer')
    const latency = byName.get('latency-database.svg')!
    for (const text of ['Latency: database', 'lower is better', 'milliseconds', 'p50', 'p90', 'p99']) {
      assert.ok(latency.includes(`>${text}<`), `latency chart shows ${text}`)
    }
  })

  it('draws a band per scenario and a bar per server, labelled with its value, in the fixed colors', () => {
    const headline = byName.get('headline.svg')!
    // The bands: the scenario, its path and its connections; escaped.
    assert.ok(headline.includes('>hello JSON · /hello · 100 connections<'))
    assert.ok(headline.includes('>GET /users · /users?limit=10 · 50 connections<'))
    assert.ok(byName.get('latency-data-api.svg')!.includes('>rows page · /datasets/1/rows?limit=100&amp;sort=&lt;score&gt; · 50 connections<'))
    // Every server that ran one of the two scenarios, in the legend and on the axis.
    for (const server of ['data-api', 'raw node:http', 'bare Fastify + postgres.js', 'FastAPI (shared pool)', 'FastAPI (pool per request)']) {
      assert.ok(headline.includes(`>${server}<`), `headline shows ${server}`)
    }
    const drawn = bars(headline)
    assert.deepEqual(drawn.map((bar) => bar.description), [
      'data-api, hello JSON: 20,000 req/s (runs 19,000–21,000)',
      'raw node:http, hello JSON: 25,000 req/s (runs 23,750–26,250)',
      'FastAPI (shared pool), hello JSON: 8,000 req/s (runs 7,600–8,400)',
      'data-api, GET /users: 12,000 req/s (runs 11,400–12,600)',
      'bare Fastify + postgres.js, GET /users: 13,000 req/s (runs 12,350–13,650)',
      'FastAPI (shared pool), GET /users: 3,000 req/s (runs 2,850–3,150)',
      'FastAPI (pool per request), GET /users: 1,500 req/s (runs 1,425–1,575)',
    ])
    for (const bar of drawn) {
      const server = Object.keys(SERVER_COLORS).find((name) => bar.description.startsWith(`${name},`)) as keyof typeof SERVER_COLORS
      assert.equal(bar.fill, SERVER_COLORS[server], bar.description)
    }
    // Each value label starts 6 px past the end of its bar, on one linear x scale from 0 shared by
    // the bands: its distance from the axis, less those 6 px, is proportional to req/s.
    const labels = valueLabels(headline)
    assert.equal(labels.size, drawn.length)
    assert.equal(labels.get('raw node:http, hello JSON: 25,000 req/s (runs 23,750–26,250)')!.text, '25,000')
    assert.equal(labels.get('FastAPI (pool per request), GET /users: 1,500 req/s (runs 1,425–1,575)')!.text, '1,500')
    const pxPerRequest = [...labels].map(([description, { x, text }]) => [description, (x - 6) / Number(text.replaceAll(',', ''))] as const)
    assert.ok(pxPerRequest[0]![1] > 0)
    for (const [description, scale] of pxPerRequest) assert.ok(Math.abs(scale - pxPerRequest[0]![1]) < 1e-9, description)
    // The same server has the same color in every chart.
    for (const { svg } of charts) {
      if (svg.includes('>FastAPI (shared pool)<')) assert.ok(svg.includes(`fill="${SERVER_COLORS['FastAPI (shared pool)']}"`))
    }
  })

  it('draws p50, p90 and p99 over one another, p50 solid in front, with the three values as the label', () => {
    const latency = byName.get('latency-data-api.svg')!
    const drawn = bars(latency)
    // One bar per percentile, p99 first (behind) and p50 last (in front).
    assert.deepEqual(drawn.map((bar) => [bar.fill, bar.opacity]), [[SERVER_COLORS['data-api'], 0.3], [SERVER_COLORS['data-api'], 0.6], [SERVER_COLORS['data-api'], 1]])
    assert.ok(drawn.every((bar) => bar.description === 'data-api, rows page: p50 9.00 · p90 12.0 · p99 18.0 ms'))
    assert.equal([...valueLabels(latency).values()][0]?.text, 'p50 9.00 · p90 12.0 · p99 18.0 ms')
  })

  it('renders offline: a spec that would load data is refused, not drawn empty', async () => {
    await assert.rejects(renderVegaLite({ data: { url: 'https://example.com/results.json' }, mark: 'bar', encoding: { x: { field: 'rps', type: 'quantitative' } } }), /rendered offline.*example\.com/)
  })

  it('skips the headline when neither of its scenarios ran', async () => {
    const results = fixture()
    results.throughput = results.throughput.slice(2)
    assert.deepEqual((await renderCharts(results)).map((chart) => chart.name), ['throughput-data-api.svg', 'latency-data-api.svg'])
  })
})

describe('updateBenchmarksFile', () => {
  const block = '### Run\n\n| a | b |\n|---|---|\n| $& | $1 |\n'

  it('replaces only what lies between the markers, keeping them', () => {
    const existing = '# Benchmarks\n\nintro\n\n<!-- bench:start -->\nold block\n<!-- bench:end -->\n\n## After\n\nkept\n'
    const updated = updateBenchmarksFile(existing, block)
    assert.equal(updated, `# Benchmarks\n\nintro\n\n<!-- bench:start -->\n${block}<!-- bench:end -->\n\n## After\n\nkept\n`)
    assert.equal(updateBenchmarksFile(updated, block), updated, 'idempotent')
  })

  it('appends a section with the markers when they are missing', () => {
    assert.equal(updateBenchmarksFile('# Benchmarks\n\nintro\n\n', block), `# Benchmarks\n\nintro\n\n## data-api bench\n\n<!-- bench:start -->\n${block}<!-- bench:end -->\n`)
    assert.equal(updateBenchmarksFile('', block), `## data-api bench\n\n<!-- bench:start -->\n${block}<!-- bench:end -->\n`)
  })

  it('refuses a lone marker instead of adding a second pair', () => {
    assert.throws(() => updateBenchmarksFile('x\n<!-- bench:start -->\nold\n', block), /unpaired bench marker/)
    assert.throws(() => updateBenchmarksFile('<!-- bench:end -->\n<!-- bench:start -->\n', block), /unpaired bench marker/)
  })
})

describe('determinism', () => {
  it('renders the same bytes for the same results', async () => {
    assert.equal(renderMarkdown(fixture()), renderMarkdown(fixture()))
    assert.deepEqual(await renderCharts(fixture()), await renderCharts(fixture()))
    // Key order of a scenario's results does not matter either.
    const shuffled = fixture()
    const hello = shuffled.throughput[0]!
    hello.results = Object.fromEntries(Object.entries(hello.results).reverse())
    assert.equal(renderMarkdown(shuffled), renderMarkdown(fixture()))
    assert.deepEqual(await renderCharts(shuffled), await renderCharts(fixture()))
  })
})
