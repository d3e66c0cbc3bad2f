// Deterministic sample data, loaded with COPY: the same options on the same starting state give
// the same rows. Each user's values come from a generator seeded by (seed, user id), so a user
// looks the same whatever batch it was created in.
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { TransactionSql } from 'postgres'
import { firstFreeId } from '../../db/first-free-id.ts'
import type { Sql } from '../../db/pool.ts'
import { chunks, DAY_MS, generator, pick, SAMPLE_EPOCH as EPOCH } from '../../lib/sample-data.ts'

export interface SeedUsersOptions { users: number, ordersPerUser: number, seed?: number }
export interface SeedResult { users: number, orders: number, firstUserId: number, ms: number }

const FIRST = ['Alice', 'Bob', 'Carol', 'Dave', 'Erin', 'Frank', 'Grace', 'Heidi', 'Ivan', 'Judy', 'Mallory', 'Niaj', 'Olivia', 'Peggy', 'Rupert', 'Sybil', 'Trent', 'Uma', 'Victor', 'Wendy', 'Xavier', 'Yara', 'Zoe', 'Amir', 'Bea', 'Chen', 'Dara', 'Emeka', 'Farah', 'Goran']
const LAST = ['Smith', 'Jones', 'Garcia', 'Meyer', 'Rossi', 'Kowalski', 'Nguyen', 'Okafor', 'Silva', 'Tanaka', 'Dubois', 'Novak', 'Larsen', 'Haddad', 'Kim', 'Ivanova', 'Costa', 'Brown', 'Singh', 'Moreau']
const STATUSES = ['delivered', 'delivered', 'delivered', 'shipped', 'paid', 'pending', 'cancelled'] as const
/** Appends users (ids after the current maximum) and their orders, in one transaction. */
export async function seedUsersAndOrders (sql: Sql, options: SeedUsersOptions): Promise<SeedResult> {
  return await sql.begin(async (tx) => await insertSampleUsers(tx, options))
}

export async function insertSampleUsers (tx: TransactionSql, { users, ordersPerUser, seed = 42 }: SeedUsersOptions): Promise<SeedResult> {
  const started = performance.now()
  const firstUserId = await firstFreeId(tx, 'users')

  const userLine = (index: number): string => {
    const id = firstUserId + index
    const random = generator(seed * 1_000_003 + id)
    const first = pick(random, FIRST)
    const last = pick(random, LAST)
    const createdAt = new Date(EPOCH - Math.floor(random() * 365 * DAY_MS)).toISOString()
    return `${id}\t${first} ${last}\t${`${first}.${last}.${id}`.toLowerCase()}@example.com\t${createdAt}\n`
  }
  const orderLines = (index: number): string => {
    const id = firstUserId + index
    const random = generator((seed * 1_000_003 + id) ^ 0x5eed)
    let lines = ''
    for (let order = 0; order < ordersPerUser; order++) {
      const amount = (1 + random() * 499).toFixed(2)
      const createdAt = new Date(EPOCH + Math.floor(random() * 300 * DAY_MS)).toISOString()
      lines += `${id}\t${amount}\t${pick(random, STATUSES)}\t${createdAt}\n`
    }
    return lines
  }

  await pipeline(Readable.from(chunks(users, userLine)), await tx`copy users (id, name, email, created_at) from stdin`.writable())
  if (ordersPerUser > 0) {
    await pipeline(Readable.from(chunks(users, orderLines)), await tx`copy orders (user_id, amount, status, created_at) from stdin`.writable())
  }
  // Ids were given explicitly; move the identity past them so inserts (POST /register) go on.
  await tx`select setval(pg_get_serial_sequence('users', 'id'), (select max(id) from users))`
  return { users, orders: users * ordersPerUser, firstUserId, ms: Math.round(performance.now() - started) }
}
