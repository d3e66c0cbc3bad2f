// `data-api keys create|list|revoke` as a user runs them: the key printed once, on the last line.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { after, describe, it } from 'node:test'
import { promisify } from 'node:util'
import { createApiKeysRepository } from '../src/auth/api-keys.ts'
import { createTestDatabase } from './helpers/database.ts'

const { url, sql } = await createTestDatabase({ after })

async function keys (env: Record<string, string>, ...args: string[]): Promise<{ stdout: string, stderr: string, code: number }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, ['bin/data-api.js', 'keys', ...args], { env: { ...process.env, DATABASE_URL: url, LOG_LEVEL: 'warn', ...env } })
    return { stdout, stderr, code: 0 }
  } catch (error) {
    const failed = error as { stdout: string, stderr: string, code: number }
    return { stdout: failed.stdout, stderr: failed.stderr, code: failed.code }
  }
}

describe('data-api keys', () => {
  it('creates a key shown once on the last line, lists it, and revokes it', async () => {
    // LOG_LEVEL info: log lines of a one-off command go to stderr, never between the output lines.
    const created = await keys({ LOG_LEVEL: 'info' }, 'create', '--name', 'ci pipeline')
    assert.equal(created.code, 0, created.stderr)
    const key = created.stdout.trimEnd()
    assert.match(key, /^dak_[A-Za-z0-9_-]{43}$/, 'stdout holds the key alone')
    assert.match(created.stderr, /created\. It is not stored/)
    const id = await createApiKeysRepository(sql).verify(key)
    assert.ok(id !== undefined, 'the printed key works')
    const [stored] = await sql`select hash, prefix from api_keys where id = ${id}`
    assert.notEqual(Buffer.from(stored!.hash as Buffer).toString('utf8'), key, 'only a hash is stored')

    const listed = await keys({}, 'list')
    assert.equal(listed.stdout.split('\n')[0], 'id\tname\tprefix\trole\tcreated\tstatus', 'a header row first')
    assert.match(listed.stdout, new RegExp(`^${id}\\tci pipeline\\t${key.slice(0, 12)}…\\towner\\t.*\\tactive$`, 'm'))
    assert.doesNotMatch(listed.stdout, new RegExp(key), 'list never shows a key')

    assert.equal((await keys({}, 'revoke', String(id))).code, 0)
    assert.equal(await createApiKeysRepository(sql).verify(key), undefined)
    assert.match((await keys({}, 'list')).stdout, /\trevoked /)
    const again = await keys({}, 'revoke', String(id))
    assert.equal(again.code, 1)
    assert.match(again.stderr, /no active key/)
  })

  it('creates an admin key with --admin, listed with its role', async () => {
    const created = await keys({}, 'create', '--name', 'ops', '--admin')
    assert.equal(created.code, 0, created.stderr)
    assert.match(created.stderr, /Admin API key/)
    const holder = await createApiKeysRepository(sql).identify(created.stdout.trimEnd())
    assert.equal(holder?.isAdmin, true)
    assert.match((await keys({}, 'list')).stdout, new RegExp(`^${holder.id}\\tops\\t.*…\\tadmin\\t`, 'm'))
    const plain = await createApiKeysRepository(sql).create('plain')
    assert.equal((await createApiKeysRepository(sql).identify(plain.key))?.isAdmin, false)
  })

  it('needs a name', async () => {
    const result = await keys({}, 'create')
    assert.notEqual(result.code, 0)
    assert.match(result.stderr, /--name/)
  })
})
