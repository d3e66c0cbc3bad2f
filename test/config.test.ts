import assert from 'node:assert/strict'
import fs from 'node:fs'
import { spawnSync } from 'node:child_process'
import { describe, it } from 'node:test'
import { ConfigError, ConfigSchema, loadConfig } from '../src/config.ts'

describe('configuration', () => {
  it('has documented defaults', () => {
    const config = loadConfig({})
    assert.equal(config.PORT, 8000)
    assert.equal(config.HOST, '127.0.0.1')
    assert.equal(config.DATA_DIR, './.data')
    assert.equal(config.DATABASE_URL, undefined)
    assert.equal(config.LOG_LEVEL, 'info')
    assert.equal(config.SHUTDOWN_GRACE_MS, 10_000)
    assert.equal(config.MONGODB_URL, undefined, 'products live in PostgreSQL unless asked')
    assert.equal(config.MONGODB_TIMEOUT_MS, 2_000)
  })

  it('parses values from strings', () => {
    const config = loadConfig({ PORT: '9001', LOG_LEVEL: 'debug', DATABASE_URL: 'postgres://u:p@db:5432/x', SHUTDOWN_GRACE_MS: '500' })
    assert.deepEqual([config.PORT, config.LOG_LEVEL, config.DATABASE_URL, config.SHUTDOWN_GRACE_MS], [9001, 'debug', 'postgres://u:p@db:5432/x', 500])
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
    const missing = Object.keys(ConfigSchema.properties).filter((name) => !readme.includes(`| \`${name}\``) && !readme.includes(`/ \`${name}\``))
    assert.deepEqual(missing, [])
  })
})
