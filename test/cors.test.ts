// CORS: off unless CORS_ORIGINS names the origins; then preflights and responses say who may call.
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { loadConfig } from '../src/config.ts'
import { buildTestApp } from './helpers/app.ts'

const preflight = (origin: string) => ({
  method: 'OPTIONS' as const,
  url: '/datasets',
  headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' },
})

describe('CORS', () => {
  it('sends no CORS headers by default', async () => {
    const { app } = await buildTestApp({ after })
    const response = await app.inject({ url: '/healthz', headers: { origin: 'https://app.example.com' } })
    assert.equal(response.headers['access-control-allow-origin'], undefined)
    assert.notEqual((await app.inject(preflight('https://app.example.com'))).statusCode, 204)
  })

  it('allows the listed origins only, with the headers the API uses', async () => {
    const { app } = await buildTestApp({ after }, { CORS_ORIGINS: 'https://app.example.com, https://admin.example.com' })
    const allowed = await app.inject(preflight('https://admin.example.com'))
    assert.equal(allowed.statusCode, 204)
    assert.equal(allowed.headers['access-control-allow-origin'], 'https://admin.example.com')
    assert.match(String(allowed.headers['access-control-allow-methods']), /POST/)
    assert.match(String(allowed.headers['access-control-allow-headers']), /authorization/)
    const response = await app.inject({ url: '/healthz', headers: { origin: 'https://app.example.com' } })
    assert.equal(response.headers['access-control-allow-origin'], 'https://app.example.com')
    assert.match(String(response.headers['access-control-expose-headers']), /x-request-id/)
    const other = await app.inject({ url: '/healthz', headers: { origin: 'https://evil.example' } })
    assert.equal(other.headers['access-control-allow-origin'], undefined)
  })

  it('refuses a malformed CORS_ORIGINS at start', () => {
    assert.throws(() => loadConfig({ CORS_ORIGINS: 'app.example.com' }), /CORS_ORIGINS/)
    assert.throws(() => loadConfig({ CORS_ORIGINS: 'https://app.example.com/path' }), /CORS_ORIGINS/)
    assert.deepEqual(loadConfig({ CORS_ORIGINS: '*' }).http.corsOrigins, ['*'])
  })
})
