// The SSRF guard's decisions, tested with an injected resolver so that no test resolves real names
// or opens a connection to anything but 127.0.0.1, even if the guard were broken.
import assert from 'node:assert/strict'
import type { LookupAddress } from 'node:dns'
import { after, describe, it } from 'node:test'
import { request } from 'undici'
import { createSsrfGuard, type Resolver } from '../src/upstream/ssrf-guard.ts'
import { startFakeUpstream } from './helpers/fake-upstream.ts'

/** A resolver from a fixed table; an unknown name fails like NXDOMAIN. */
function resolverOf (table: Record<string, string[] | (() => string[])>): Resolver {
  return async (hostname) => {
    const entry = table[hostname]
    if (entry === undefined) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' })
    const addresses = typeof entry === 'function' ? entry() : entry
    return addresses.map((address): LookupAddress => ({ address, family: address.includes(':') ? 6 : 4 }))
  }
}

const names = resolverOf({
  'public.example': ['93.184.215.14'],
  'internal.example': ['10.20.30.40'],
  'mixed.example': ['93.184.215.14', '192.168.1.10'],
  'metadata.example': ['169.254.169.254'],
  'v6-private.example': ['fd12:3456::1'],
  'localhost': ['127.0.0.1', '::1'],
})

async function refusedReason (guard: ReturnType<typeof createSsrfGuard>, url: string): Promise<string> {
  try {
    await guard.check(url)
  } catch (error) {
    const problem = error as { code?: string, status?: number, extra?: { reason?: string } }
    assert.equal(problem.code, 'url-not-allowed')
    assert.equal(problem.status, 400)
    return problem.extra?.reason ?? ''
  }
  assert.fail(`${url} was allowed`)
}

describe('SSRF guard decisions', () => {
  const guard = createSsrfGuard({ resolve: names })

  for (const [url, range] of [
    ['http://127.0.0.1/', 'loopback'],
    ['http://127.8.9.10:8080/x', 'loopback'],
    ['http://10.0.0.1/', 'private'],
    ['http://10.255.255.255/', 'private'],
    ['http://172.16.5.4/', 'private'],
    ['http://192.168.0.1/', 'private'],
    ['http://169.254.169.254/latest/meta-data/', 'linkLocal'],
    ['http://100.64.0.1/', 'carrierGradeNat'],
    ['http://0.0.0.0/', 'unspecified'],
    ['http://[::1]/', 'loopback'],
    ['http://[fd00:ec2::254]/', 'uniqueLocal'],
    ['http://[fe80::1]/', 'linkLocal'],
    ['http://[::ffff:10.0.0.1]/', 'private'], // IPv4-mapped: judged as the IPv4 address
    ['http://2130706433/', 'loopback'], // 127.0.0.1 written as one number
    ['http://0x7f.1/', 'loopback'],
    ['http://internal.example/', 'private'],
    ['http://metadata.example/', 'linkLocal'],
    ['http://v6-private.example/', 'uniqueLocal'],
    ['http://localhost:3000/', 'loopback'],
    ['http://mixed.example/', 'private'], // one private address among public ones is enough
  ]) {
    it(`refuses ${url} (${range})`, async () => {
      assert.match(await refusedReason(guard, url!), new RegExp(`is a ${range} address`))
    })
  }

  it('allows public addresses and names that resolve to them', async () => {
    for (const url of ['https://public.example/data.csv', 'http://93.184.215.14/', 'http://[2606:4700::6810:85e5]/']) {
      assert.equal((await guard.check(url)).href, new URL(url).href)
    }
  })

  it('refuses other schemes, credentials, relative URLs and names that do not resolve', async () => {
    assert.match(await refusedReason(guard, 'file:///etc/passwd'), /only http and https/)
    assert.match(await refusedReason(guard, 'gopher://public.example/'), /only http and https/)
    assert.match(await refusedReason(guard, 'http://user:pw@public.example/'), /credentials/)
    assert.match(await refusedReason(guard, '/relative/path'), /not an absolute URL/)
    assert.match(await refusedReason(guard, 'http://nowhere.example/'), /could not be resolved/)
  })

  it('lets the allowlist open CIDR ranges, single addresses and host names', async () => {
    const allowing = createSsrfGuard({ resolve: names, allow: ['10.0.0.0/8', '::1', ' localhost ', 'metadata.example'] })
    await allowing.check('http://10.1.2.3/')
    await allowing.check('http://internal.example/')
    await allowing.check('http://[::1]:8080/')
    await allowing.check('http://localhost/')
    await allowing.check('http://metadata.example/')
    // Only what was listed: 127.0.0.1 and 192.168/16 stay closed.
    assert.match(await refusedReason(allowing, 'http://127.0.0.1/'), /loopback/)
    assert.match(await refusedReason(allowing, 'http://mixed.example/'), /private/)
  })

  it('decides again at connect time, so DNS rebinding after the check is refused', async () => {
    let answers = 0
    const rebinding = createSsrfGuard({ resolve: resolverOf({ 'rebind.example': () => (answers++ === 0 ? ['93.184.215.14'] : ['127.0.0.1']) }) })
    await rebinding.check('http://rebind.example/') // first answer: public
    const error = await new Promise<NodeJS.ErrnoException | null>((resolve) => {
      rebinding.lookup('rebind.example', { all: true }, (lookupError) => { resolve(lookupError) })
    })
    assert.equal(error?.code, 'ESSRF')
    assert.match(error?.message ?? '', /127\.0\.0\.1 is a loopback address/)
  })
})

describe('SSRF guard on real connections (loopback only)', () => {
  it('refuses to connect to 127.0.0.1 unless allowlisted, by address or by name', async () => {
    const upstream = await startFakeUpstream()
    after(async () => { await upstream.close() })
    const port = new URL(upstream.origin).port
    const closed = createSsrfGuard({ resolve: names }).agent()
    after(async () => { await closed.close() })
    for (const url of [`${upstream.origin}/json/0`, `http://localhost:${port}/json/0`]) {
      await assert.rejects(request(url, { dispatcher: closed }), (error: NodeJS.ErrnoException) => error.code === 'ESSRF')
    }
    assert.equal(upstream.stats.connections, 0, 'the guard refused before any connection was opened')

    const open = createSsrfGuard({ resolve: names, allow: ['127.0.0.1/32', '::1'] }).agent()
    after(async () => { await open.close() })
    for (const url of [`${upstream.origin}/json/0`, `http://localhost:${port}/json/0`]) {
      const response = await request(url, { dispatcher: open })
      assert.equal(response.statusCode, 200)
      await response.body.dump()
    }
    assert.equal(upstream.stats.requests, 2)
  })
})
