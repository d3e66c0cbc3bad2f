// The request-duration histogram counts on its own (prom-client's observe() is too slow for every
// request) but must read exactly as prom-client's Histogram would: prom-client is the oracle, fed
// the same generated observations, and the two registries' texts must be equal line for line.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { Histogram, Registry, type Metric } from 'prom-client'
import { RequestDurations } from '../src/plugins/metrics.ts'

const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
const NAME = 'http_request_duration_seconds'
const HELP = 'Time from request to response.'

const observation = fc.record({
  method: fc.constantFrom('GET', 'HEAD', 'POST', 'DELETE'),
  route: fc.constantFrom('/healthz', '/users/:user_id', 'unmatched', '/datasets/:dataset_id/rows'),
  status: fc.constantFrom(200, 201, 404, 503),
  // Bucket bounds themselves included: a value equal to a bound counts in that bucket.
  seconds: fc.oneof(fc.constantFrom(0, ...BUCKETS, 11), fc.double({ min: 0, max: 20, noNaN: true })),
})

describe('request durations', () => {
  it('read as prom-client\'s Histogram of the same observations', async () => {
    await fc.assert(fc.asyncProperty(fc.array(observation, { maxLength: 60 }), async (observations) => {
      const ours = new Registry()
      const durations = new RequestDurations(NAME, HELP, BUCKETS)
      ours.registerMetric(durations as unknown as Metric)
      const theirs = new Registry()
      const oracle = new Histogram({ name: NAME, help: HELP, labelNames: ['method', 'route', 'status_code'], buckets: BUCKETS, registers: [theirs] })
      for (const { method, route, status, seconds } of observations) {
        durations.observe(method, route, status, seconds)
        oracle.observe({ method, route, status_code: status }, seconds)
      }
      // Series come out in first-seen order in both, except that ours groups by route and method:
      // compare the lines as sets, and the count of lines.
      const lines = (text: string): string[] => text.trim().split('\n').sort()
      assert.deepEqual(lines(await ours.metrics()), lines(await theirs.metrics()))
    }), { numRuns: 200 })
  })

  it('starts over on reset', async () => {
    const registry = new Registry()
    const durations = new RequestDurations(NAME, HELP, BUCKETS)
    registry.registerMetric(durations as unknown as Metric)
    durations.observe('GET', '/healthz', 200, 0.002)
    registry.resetMetrics()
    assert.doesNotMatch(await registry.metrics(), /_count/)
  })
})
