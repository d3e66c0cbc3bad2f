import assert from 'node:assert/strict'
import fs from 'node:fs'
import { spawnSync } from 'node:child_process'
import { describe, it } from 'node:test'
import { ConfigError, EnvironmentSchema, loadConfig } from '../src/config.ts'

describe('configuration', () => {
  it('has documented defaults', () => {
    const config = loadConfig({})
    assert.equal(config.http.port, 8000)
    assert.equal(config.http.host, '127.0.0.1')
    assert.equal(config.dataDir, './.data')
    assert.equal(config.database.url, undefined)
    assert.equal(config.logLevel, 'info')
    assert.equal(config.shutdownGraceMs, 10_000)
    assert.equal(config.mongodb.url, undefined, 'products live in PostgreSQL unless asked')
    assert.equal(config.mongodb.timeoutMs, 2_000)
    assert.equal(config.upstreams.urls, undefined, 'the sample upstreams')
    assert.deepEqual([config.http.corsOrigins, config.http.trustProxy, config.ssrfAllowlist], [[], [], []])
  })

  it('parses values from strings', () => {
    const config = loadConfig({ PORT: '9001', LOG_LEVEL: 'debug', DATABASE_URL: 'postgres://u:p@db:5432/x', SHUTDOWN_GRACE_MS: '500' })
    assert.deepEqual([config.http.port, config.logLevel, config.database.url, config.shutdownGraceMs], [9001, 'debug', 'postgres://u:p@db:5432/x', 500])
  })

  it('parses the lists once: URLs, origins, proxies, allowlist entries', () => {
    const config = loadConfig({
      UPSTREAM_URLS: ' http://a.example/x , https://b.example:8443/y?q=1 ',
      CORS_ORIGINS: 'https://app.example.com, https://admin.example.com',
      TRUST_PROXY: '10.0.0.0/8,127.0.0.1',
      SSRF_ALLOWLIST: '10.1.0.0/16, files.internal,',
    })
    assert.deepEqual(config.upstreams.urls?.map((url) => url.href), ['http://a.example/x', 'https://b.example:8443/y?q=1'])
    assert.deepEqual(config.http.corsOrigins, ['https://app.example.com', 'https://admin.example.com'])
    assert.deepEqual(config.http.trustProxy, ['10.0.0.0/8', '127.0.0.1'])
    assert.deepEqual(config.ssrfAllowlist, ['10.1.0.0/16', 'files.internal'])
  })

  const bad: Array<[Record<string, string>, string, RegExp]> = [
    [{ PORT: 'abc' }, 'PORT', /must be an integer \(got "abc"\)/],
    [{ PORT: '12.5' }, 'PORT', /must be an integer/],
    [{ PORT: '70000' }, 'PORT', /must be <= 65535/],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL', /must be one of fatal, error, warn, info, debug, trace, silent/],
    [{ DATABASE_URL: 'mysql://x' }, 'DATABASE_URL', /must match pattern/],
    [{ SHUTDOWN_GRACE_MS: '-1' }, 'SHUTDOWN_GRACE_MS', /must be >= 0/],
    [{ UPSTREAM_URLS: 'http://a.example/x,ftp://b.example/y' }, 'UPSTREAM_URLS', /must match pattern/],
    [{ SAMPLE_UPSTREAMS: 'maybe' }, 'SAMPLE_UPSTREAMS', /must be true or false/],
    [{ MONGODB_URL: 'postgres://x' }, 'MONGODB_URL', /must match pattern/],
    [{ MONGODB_TIMEOUT_MS: '0' }, 'MONGODB_TIMEOUT_MS', /must be >= 10/],
  ]
  for (const [env, variable, message] of bad) {
    it(`refuses ${JSON.stringify(env)} naming ${variable}`, () => {
      assert.throws(() => loadConfig(env), (error: unknown) => {
        assert.ok(error instanceof ConfigError)
        assert.equal(error.variable, variable)
        assert.match(error.message, new RegExp(`^${variable}: `))
        assert.match(error.message, message)
        return true
      })
    })
  }

  it('makes the CLI exit 1 with one line naming the variable', () => {
    const result = spawnSync(process.execPath, ['bin/data-api.js', 'serve'], { env: { ...process.env, PORT: 'eighty' }, encoding: 'utf8' })
    assert.equal(result.status, 1)
    assert.equal(result.stdout, '')
    assert.equal(result.stderr, 'data-api: invalid configuration: PORT: must be an integer (got "eighty")\n')
  })

  it('documents every variable in the README', () => {
    const readme = fs.readFileSync('README.md', 'utf8')
    const missing = Object.keys(EnvironmentSchema.properties).filter((name) => !readme.includes(`| \`${name}\``) && !readme.includes(`/ \`${name}\``))
    assert.deepEqual(missing, [])
  })
})
