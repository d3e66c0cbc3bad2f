// The soak report: the least-squares slope, the verdict's thresholds and warm-up, the
// BENCHMARKS.md section update, and a chart that is well-formed SVG. Pure functions: no server.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { RouteWindow } from '../bench/soak-load.ts'
import { computeVerdict, renderSoakChart, renderSoakMarkdown, slope, updateSoakSection, type SoakResults, type SoakWindow } from '../bench/soak-report.ts'

const route = (p99: number, requests = 100): RouteWindow => ({ requests, p50: p99 / 4, p99, max: p99 * 1.2, throttled: 0, non2xx: 0, failures: 0 })

/** Windows of 30 s; `rss(i)` and `p99(i)` give window i's values; window 0 is warm-up. */
function windows (count: number, rss: (i: number) => number, p99: (i: number) => number): SoakWindow[] {
  return Array.from({ length: count }, (_, i) => ({
    index: i,
    warmUp: i === 0,
    endSeconds: (i + 1) * 30,
    seconds: 30,
    rps: 100,
    overall: route(p99(i), 3000),
    core: route(p99(i) / 10, 2700),
    routes: { 'GET /healthz': route(p99(i) / 20), 'GET /external': route(p99(i)) },
    skipped: 0,
    lateSends: 0,
    maxInFlight: 4,
    server: { rssMb: rss(i), rssMaxMb: rss(i) + 2, heapUsedMb: 80, heapTotalMb: 120, externalMb: 5, eventLoopLagP99Ms: 11, activeHandles: 20, pgConnections: 10 },
  }))
}

function results (list: SoakWindow[]): SoakResults {
  return {
    startedAt: '2026-11-25T16:00:00.000Z',
    finishedAt: '2026-11-25T16:05:30.000Z',
    options: { minutes: 5, windowSeconds: 30, rate: 100, warmUpWindows: 1 },
    machine: { cpus: 2, cpuModel: 'Test CPU <x> & co', memoryGiB: 24, os: 'Linux 6.8', node: 'v24.21.0', postgres: '18.4' },
    mix: [{ name: 'GET /healthz', weight: 90, example: '/healthz', core: true }, { name: 'GET /external', weight: 10, example: '/external', core: false }],
    windows: list,
    rssSamples: list.map((w) => [w.endSeconds, w.server.rssMb!]),
    fullGcs: [[20, 150, 80], [95, 180, 82], [200, 190, 83]],
    serverExit: null,
    verdict: computeVerdict(list, [[20, 150, 80], [95, 180, 82], [200, 190, 83]]),
    serverLog: { lines: 0, first: [] },
    notes: [],
  }
}

describe('slope', () => {
  it('fits a least-squares line', () => {
    assert.equal(slope([[0, 1], [1, 3], [2, 5]]), 2)
    assert.ok(Math.abs(slope([[0, 0], [1, 2], [2, 1], [3, 3]])! - 0.8) < 1e-12)
  })
  it('has none with fewer than two points or a single x', () => {
    assert.equal(slope([[1, 1]]), null)
    assert.equal(slope([[1, 1], [1, 2]]), null)
  })
})

describe('computeVerdict', () => {
  it('is flat for steady memory and latency, leaving the warm-up window out', () => {
    // The warm-up window is 100 MB lower and 10× slower: counted, it would fail both checks.
    const verdict = computeVerdict(windows(10, (i) => i === 0 ? 150 : 250 + (i % 2), (i) => i === 0 ? 1000 : 100))
    assert.equal(verdict.measuredWindows, 9)
    assert.ok(verdict.rss!.flat && Math.abs(verdict.rss!.slopeMbPerMinute) < 1)
    assert.equal(verdict.p99!.ratio, 1)
    assert.equal(verdict.flat, true)
    assert.equal(verdict.totals.requests, 27_000)
  })
  it('fits the live heap on the full GCs after the warm-up', () => {
    const verdict = computeVerdict(windows(10, () => 250, () => 100), [[20, 150, 60], [60, 180, 80], [120, 190, 81], [180, 200, 82]])
    assert.equal(verdict.liveHeap!.collections, 3)
    assert.ok(Math.abs(verdict.liveHeap!.slopeMbPerMinute - 1) < 1e-9)
  })
  it('is never flat when the server exited', () => {
    const verdict = computeVerdict(windows(10, () => 250, () => 100), [], true)
    assert.equal(verdict.flat, false)
  })
  it('fails growing memory: over 1 MB/min and over 5% of the first window', () => {
    // 3 MB per 30 s window = 6 MB/min on 200 MB, over 4 minutes: +24 MB = 12%.
    const verdict = computeVerdict(windows(10, (i) => 200 + 3 * (i - 1), () => 100))
    assert.ok(Math.abs(verdict.rss!.slopeMbPerMinute - 6) < 1e-9)
    assert.ok(Math.abs(verdict.rss!.growthPercent - 12) < 1e-9)
    assert.equal(verdict.rss!.flat, false)
    assert.equal(verdict.flat, false)
  })
  it('accepts a slope over 1 MB/min when the growth stays under 5%', () => {
    // 0.6 MB per window = 1.2 MB/min, over 4 min +4.8 MB on 1000 MB: 0.48%.
    const verdict = computeVerdict(windows(10, (i) => 1000 + 0.6 * (i - 1), () => 100))
    assert.ok(verdict.rss!.slopeMbPerMinute > 1)
    assert.equal(verdict.rss!.flat, true)
  })
  it('fails a p99 that ends over 1.5 × where it began', () => {
    const verdict = computeVerdict(windows(6, () => 250, (i) => i === 5 ? 160 : 100))
    assert.equal(verdict.p99!.ratio, 1.6)
    assert.equal(verdict.p99!.flat, false)
    assert.equal(verdict.coreP99!.flat, false)
    assert.equal(verdict.flat, false)
    assert.equal(verdict.routes['GET /healthz']!.ratio, 1.6)
  })
})

describe('updateSoakSection', () => {
  const file = '# Benchmarks\n\n## Seeding\n\ntext\n\n## data-api bench\n\n<!-- bench:start -->\nsuite\n<!-- bench:end -->\n'
  it('adds the section before the suite\'s, which stays last', () => {
    const updated = updateSoakSection(file, 'block one', 'What the soak does.')
    assert.equal(updated, '# Benchmarks\n\n## Seeding\n\ntext\n\n## Soak — `npm run bench:soak`\n\nWhat the soak does.\n\n<!-- soak:start -->\nblock one\n<!-- soak:end -->\n\n## data-api bench\n\n<!-- bench:start -->\nsuite\n<!-- bench:end -->\n')
  })
  it('replaces only what is between the markers, keeping `$&` literal', () => {
    const once = updateSoakSection(file, 'block one', 'intro')
    const twice = updateSoakSection(once, 'block $& two', 'another intro')
    assert.equal(twice, once.replace('block one', () => 'block $& two'))
  })
  it('refuses an unpaired marker', () => {
    assert.throws(() => updateSoakSection('<!-- soak:end -->\n', 'x', 'y'), /unpaired soak marker/)
  })
})

describe('renderSoakMarkdown and renderSoakChart', () => {
  const run = results(windows(10, (i) => 250 + (i % 2), () => 100))
  it('states the verdict, the thresholds and how to reproduce', () => {
    const markdown = renderSoakMarkdown(run)
    assert.match(markdown, /^### Run of 2026-11-25 16:00 UTC — 5 min at 100 req\/s, 30 s windows/)
    assert.match(markdown, /\*\*Verdict: flat: RSS [+−]0\.\d\d MB\/min/)
    assert.match(markdown, /flat: < 1 MB\/min or < 5%/)
    assert.match(markdown, /≤ 1\.5×/)
    assert.ok(markdown.includes('`npm run bench:soak -- --minutes 5 --window-seconds 30 --rate 100`'))
    assert.ok(markdown.includes('| 1 (warm-up) |'))
    assert.ok(markdown.includes('| GET /external † |'))
  })
  it('draws well-formed SVG with escaped text', async () => {
    const svg = await renderSoakChart(run)
    assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"[^>]* width="(\d+)" height="(\d+)" viewBox="0 0 \1 \2"/)
    assert.ok(svg.includes('Test CPU &lt;x&gt; &amp; co'))
    assert.equal(svg.match(/<text[\s>]/g)?.length, svg.match(/<\/text>/g)?.length)
    const stack: string[] = []
    for (const [tag, closing, name, selfClosing] of svg.matchAll(/<(\/?)([a-zA-Z]+)[^>]*?(\/?)>/g)) {
      assert.doesNotMatch(tag, /&(?!(amp|lt|gt|quot|apos);)/, tag)
      if (closing === '/') assert.equal(stack.pop(), name)
      else if (selfClosing !== '/') stack.push(name!)
    }
    assert.deepEqual(stack, [])
    assert.equal(await renderSoakChart(run), svg, 'the same bytes for the same results')
  })
  it('plots memory and p99 over time: a line per series, named in the legends, the warm-up shaded', async () => {
    const svg = await renderSoakChart(run)
    for (const text of [
      'data-api soak: memory and p99 over time',
      '5 min of a mixed workload at 100 req/s, 30 s windows · flat',
      'Resident memory and V8 heap of the server process (MB)',
      'p99 latency per window (ms, log scale)',
      'minutes since the first request',
      'MB', 'ms', 'warm-up',
    ]) assert.ok(svg.includes(`>${text}<`), `the chart shows ${text}`)
    const series = ['RSS, window mean', 'RSS, every second', 'V8 heap used', 'V8 heap total', 'live heap (after each full GC)', 'all routes', 'core routes', 'GET /healthz', 'GET /external']
    const lines = [...svg.matchAll(/<path aria-label="[^"]*; series: ([^"]*)" role="graphics-symbol" aria-roledescription="line mark"/g)].map(([, name]) => name)
    assert.deepEqual(lines, series, 'one line per series, in the legend\'s order')
    for (const name of series) assert.ok(svg.includes(`>${name}<`), `the legend names ${name}`)
    // A point per window of the seven windowed series and per full GC (RSS every second is a line only).
    assert.equal(svg.match(/aria-roledescription="circle"/g)?.length, 10 * 7 + run.fullGcs.length)
    assert.ok(svg.includes('aria-label="RSS, window mean: 251 at 0.8 min"'))
    // The p99 axis is logarithmic: ticks at powers of ten only.
    assert.match(svg, /aria-label="Y-axis titled 'ms' for a log scale/)
    // The shaded warm-up: one rect in each panel.
    assert.equal(svg.match(/aria-roledescription="rect mark"/g)?.length, 2)
  })
})
