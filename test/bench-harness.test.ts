// The benchmark harness itself, on a tiny scenario (seconds), so that it cannot silently rot:
// it builds its database, starts data-api and raw node:http as processes, loads them with
// autocannon from another process, and writes the JSON, the charts and the Markdown block.
import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { after, describe, it } from 'node:test'
import { runBench } from '../bench/suite.ts'

describe('data-api bench', () => {
  it('measures a tiny scenario end to end and writes its reports', async () => {
    const outDir = await fs.mkdtemp(path.join(os.tmpdir(), 'bench-harness-'))
    after(async () => { await fs.rm(outDir, { recursive: true, force: true }) })
    const benchmarksFile = path.join(outDir, 'BENCHMARKS.md')
    await fs.writeFile(benchmarksFile, '# Benchmarks\n\nkept\n\n<!-- bench:start -->\nold\n<!-- bench:end -->\n\nalso kept\n')

    const results = await runBench({
      quick: true, only: 'hello', servers: ['data-api', 'raw node:http'], durationSeconds: 1, runs: 1, users: 100, outDir, benchmarksFile, log: () => {},
    })

    const hello = results.throughput.find((scenario) => scenario.name === 'hello JSON')!
    for (const server of ['data-api', 'raw node:http'] as const) {
      const summary = hello.results[server]!
      assert.ok(summary.median.rps > 100, `${server} served ${summary.median.rps} req/s`)
      assert.equal(summary.median.errors, 0)
      assert.equal(summary.median.non2xx, 0)
    }
    assert.equal(results.targets.find((target) => target.target.startsWith('hello JSON ≥ 0.95'))?.ratio, hello.results['data-api']!.median.rps / hello.results['raw node:http']!.median.rps)

    const [json] = await fs.readdir(path.join(outDir, 'results'))
    assert.deepEqual(JSON.parse(await fs.readFile(path.join(outDir, 'results', json!), 'utf8')), JSON.parse(JSON.stringify(results)))
    const charts = await fs.readdir(path.join(outDir, 'charts'))
    assert.ok(charts.some((name) => name.endsWith('.svg')), `charts: ${charts.join(', ')}`)
    const markdown = await fs.readFile(benchmarksFile, 'utf8')
    assert.match(markdown, /kept[\s\S]*<!-- bench:start -->[\s\S]*hello JSON[\s\S]*<!-- bench:end -->[\s\S]*also kept/)
    assert.doesNotMatch(markdown, /\nold\n/)
  })
})
