// API keys: random 256-bit secrets shown once at creation and stored only as a SHA-256 hash (a
// slow password hash buys nothing for a key with this much entropy, and would cost every
// request). A key is found by its hash, so a wrong key never leads to a stored secret to compare
// against; the hash lookup itself is an index probe that reveals nothing about near misses.
import { createHash, randomBytes } from 'node:crypto'
import type { Sql } from '../db/pool.ts'

const KEY_PREFIX = 'dak_'
const KEY_FORMAT = /^dak_[A-Za-z0-9_-]{43}$/

export interface ApiKeyInfo { id: number, name: string, prefix: string, is_admin: boolean, created_at: Date, revoked_at: Date | null }

/** A live key as a request carries it: which key, and whether it may write every data set. */
export interface ApiKeyHolder { id: number, isAdmin: boolean }

export type ApiKeysRepository = ReturnType<typeof createApiKeysRepository>

function hashKey (key: string): Buffer {
  return createHash('sha256').update(key).digest()
}

export function createApiKeysRepository (sql: Sql) {
  /** The live key and whether it is an admin's, or undefined for a malformed, unknown or revoked one. */
  const identify = async (key: string): Promise<ApiKeyHolder | undefined> => {
    if (!KEY_FORMAT.test(key)) return undefined
    const [row] = await sql<[{ id: number, is_admin: boolean }?]>`select id, is_admin from api_keys where hash = ${hashKey(key)} and revoked_at is null`
    return row === undefined ? undefined : { id: Number(row.id), isAdmin: row.is_admin }
  }

  return {
    /** A new key; an admin key (`isAdmin`) may write every data set, not only its own. */
    async create (name: string, { isAdmin = false }: { isAdmin?: boolean } = {}): Promise<{ id: number, key: string }> {
      const key = KEY_PREFIX + randomBytes(32).toString('base64url')
      const [row] = await sql<[{ id: number }]>`
        insert into api_keys (name, prefix, hash, is_admin) values (${name}, ${key.slice(0, 12)}, ${hashKey(key)}, ${isAdmin}) returning id`
      return { id: row.id, key }
    },

    async list (): Promise<ApiKeyInfo[]> {
      return await sql<ApiKeyInfo[]>`select id, name, prefix, is_admin, created_at, revoked_at from api_keys order by id`
    },

    /** Revokes by id or by the key's prefix; returns how many keys were revoked (0 or 1). */
    async revoke (idOrPrefix: string): Promise<number> {
      const byId = /^\d+$/.test(idOrPrefix) ? Number(idOrPrefix) : -1
      const revoked = await sql`
        update api_keys set revoked_at = now()
        where (id = ${byId} or prefix = ${idOrPrefix}) and revoked_at is null returning id`
      return revoked.length
    },

    /** The id of the live key, or undefined for a malformed, unknown or revoked one. */
    async verify (key: string): Promise<number | undefined> {
      return (await identify(key))?.id
    },

    identify,
  }
}
