import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { seedDemo, seedUsersAndOrders } from '../src/db/seed.ts'
import { createTestDatabase } from './helpers/database.ts'

async function snapshot (sql: Awaited<ReturnType<typeof createTestDatabase>>['sql']): Promise<unknown[]> {
  return [
    ...await sql`select id, name, email, created_at from users order by id`,
    ...await sql`select id, user_id, amount, status, created_at from orders order by id`,
  ]
}

describe('seed', () => {
  it('is deterministic: the same options give the same rows', async () => {
    const [a, b] = await Promise.all([createTestDatabase({ after }), createTestDatabase({ after })])
    const options = { users: 50, ordersPerUser: 3, seed: 7 }
    assert.deepEqual(await seedUsersAndOrders(a.sql, options).then((r) => [r.users, r.orders, r.firstUserId]), [50, 150, 1])
    await seedUsersAndOrders(b.sql, options)
    assert.deepEqual(await snapshot(a.sql), await snapshot(b.sql))
    const other = await createTestDatabase({ after })
    await seedUsersAndOrders(other.sql, { ...options, seed: 8 })
    assert.notDeepEqual(await snapshot(a.sql), await snapshot(other.sql), 'another seed gives other rows')
  })

  it('appends after existing users and keeps the id sequence usable', async () => {
    const { sql } = await createTestDatabase({ after })
    await seedUsersAndOrders(sql, { users: 10, ordersPerUser: 1 })
    const second = await seedUsersAndOrders(sql, { users: 5, ordersPerUser: 0 })
    assert.equal(second.firstUserId, 11)
    const [{ id }] = await sql<[{ id: number }]>`insert into users (name, email) values ('New', 'new@example.com') returning id`
    assert.equal(id, 16)
  })

  it('loads the demo set once', async () => {
    const { sql } = await createTestDatabase({ after })
    assert.equal(await seedDemo(sql), true)
    assert.equal(await seedDemo(sql), false)
    const [{ users, orders }] = await sql<[{ users: number, orders: number }]>`
      select (select count(*) from users)::int as users, (select count(*) from orders)::int as orders`
    assert.equal(users, 300)
    assert.equal(orders, 2400)
  })
})
