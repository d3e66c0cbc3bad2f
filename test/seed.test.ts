import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { after, describe, it } from 'node:test'
import { promisify } from 'node:util'
import { MongoClient } from 'mongodb'
import { createConfiguredDatasetService } from '../src/routes/datasets/service.ts'
import { seedUsersAndOrders } from '../src/routes/users/seed.ts'
import { seedDemo } from '../src/resources.ts'
import { buildTestApp } from './helpers/app.ts'
import { sampleProduct } from '../src/routes/products/sample-products.ts'
import { createTestDatabase } from './helpers/database.ts'
import { createTestMongoDatabase, testMongoUrl, withDatabase } from './helpers/mongo.ts'
import { skipWithoutMongo } from './helpers/requirements.ts'
import { pino } from 'pino'

const execFileAsync = promisify(execFile)

/** Runs the real `data-api seed …` with exactly this environment (plus PATH). */
async function seedCli (args: string[], env: Record<string, string>): Promise<void> {
  await execFileAsync(process.execPath, ['bin/data-api.js', 'seed', ...args], { env: { PATH: process.env.PATH, LOG_LEVEL: 'warn', ...env } })
}

async function snapshot (sql: Awaited<ReturnType<typeof createTestDatabase>>['sql']): Promise<unknown[]> {
  return [
    ...await sql`select id, name, email, created_at from users order by id`,
    ...await sql`select id, user_id, amount, status, created_at from orders order by id`,
  ]
}

describe('seed', () => {
  it('asks what to add rather than appending 10,000 users unasked', async () => {
    const { url, sql } = await createTestDatabase({ after })
    await assert.rejects(seedCli([], { DATABASE_URL: url }), (error: { code: number, stderr: string }) => error.code !== 0 && /--users N/.test(error.stderr))
    assert.equal((await sql`select id from users`).length, 0, 'no user was added')
  })

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
    const { sql, jobs, config } = await buildTestApp({ after })
    const datasets = createConfiguredDatasetService(config, { sql, jobs, log: pino({ level: 'silent' }) })
    assert.equal(await seedDemo(sql, datasets), true)
    assert.equal(await seedDemo(sql, datasets), false)
    const [{ users, orders, products, rows }] = await sql<[{ users: number, orders: number, products: number, rows: number }]>`
      select (select count(*) from users)::int as users, (select count(*) from orders)::int as orders,
        (select count(*) from products)::int as products, (select sum(rows) from datasets)::int as rows`
    assert.equal(users, 300)
    assert.equal(orders, 2400)
    assert.equal(products, 200)
    assert.equal(rows, 2000, 'the weather data set')
  })

  it('adds the demo products to a database seeded before products existed', async () => {
    const { sql, jobs, config } = await buildTestApp({ after })
    const datasets = createConfiguredDatasetService(config, { sql, jobs, log: pino({ level: 'silent' }) })
    await sql`insert into seed_log (name) values ('demo-users')`
    assert.equal(await seedDemo(sql, datasets), true)
    const [{ products }] = await sql<[{ products: number }]>`select count(*)::int as products from products`
    assert.equal(products, 200)
    assert.equal(await seedDemo(sql, datasets), false)
  })
})

describe('data-api seed --products', () => {
  it('fills the PostgreSQL catalog store by default, and only products when only --products is given', async () => {
    const { sql, url } = await createTestDatabase({ after })
    await seedCli(['--products', '30', '--seed', '3'], { DATABASE_URL: url })
    const rows = await sql<Array<{ id: number, name: string, users: number }>>`
      select id, name, (select count(*) from users)::int as users from products order by id`
    assert.equal(rows.length, 30)
    assert.equal(rows[0]!.users, 0, 'no users were added')
    assert.deepEqual([rows[0]!.id, rows[0]!.name], [1, sampleProduct(1, 3).name])
  })

  it('fills the MongoDB catalog store when MONGODB_URL is set, appending on a second run', { skip: skipWithoutMongo() }, async () => {
    const { url } = await createTestDatabase({ after })
    const name = createTestMongoDatabase({ after })
    const mongoUrl = withDatabase(testMongoUrl(), name)
    await seedCli(['--products', '1500', '--seed', '3'], { DATABASE_URL: url, MONGODB_URL: mongoUrl })
    await seedCli(['--products', '5', '--seed', '3'], { DATABASE_URL: url, MONGODB_URL: mongoUrl })
    const client = new MongoClient(mongoUrl)
    try {
      const products = client.db(name).collection('products')
      assert.equal(await products.countDocuments(), 1505, 'two batches of 1000 and a second run')
      const [last] = await products.find().sort({ _id: -1 }).limit(1).toArray()
      assert.equal(last?.name, sampleProduct(1505, 3).name, 'numbered on after the first run')
      const indexes = await products.listIndexes().toArray()
      assert.ok(indexes.some((index) => index.name === 'category_id'), 'the category index exists')
    } finally {
      await client.close()
    }
  })
})
