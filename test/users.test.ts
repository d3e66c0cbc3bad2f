import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { seedUsersAndOrders } from '../src/routes/users/seed.ts'
import { buildTestApp } from './helpers/app.ts'

const { app, sql } = await buildTestApp({ after })
await seedUsersAndOrders(sql, { users: 25, ordersPerUser: 2 })

describe('GET /users/{user_id}', () => {
  it('returns the user in the lesson\'s shape', async () => {
    const response = await app.inject({ url: '/users/7' })
    assert.equal(response.statusCode, 200)
    const user = response.json()
    assert.deepEqual(Object.keys(user).sort(), ['created_at', 'email', 'name', 'user_id'])
    assert.equal(user.user_id, 7)
    const [row] = await sql`select name, email, created_at from users where id = 7`
    assert.equal(user.name, row?.name)
    assert.equal(user.email, row?.email)
    assert.equal(user.created_at, (row?.created_at as Date).toISOString())
  })

  for (const bad of ['abc', '1.5', '0', '-3', '99999999999999999999']) {
    it(`answers ${bad} with a 400 problem naming user_id`, async () => {
      const response = await app.inject({ url: `/users/${bad}` })
      assert.equal(response.statusCode, 400)
      assert.match(String(response.headers['content-type']), /^application\/problem\+json/)
      assert.equal(response.json().errors[0].pointer, '/user_id')
    })
  }

  it('answers a missing user with a 404 problem', async () => {
    const response = await app.inject({ url: '/users/4242' })
    assert.equal(response.statusCode, 404)
    assert.equal(response.json().type, '/problems/not-found')
    assert.equal(response.json().detail, 'There is no user 4242.')
  })
})

describe('GET /users', () => {
  it('returns an array of 10 by default, with a next link', async () => {
    const response = await app.inject({ url: '/users' })
    assert.equal(response.statusCode, 200)
    const users = response.json()
    assert.ok(Array.isArray(users))
    assert.deepEqual(users.map((user: { user_id: number }) => user.user_id), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
    assert.equal(response.headers.link, '</users?limit=10&after=10>; rel="next"')
  })

  it('pages through every user exactly once by following Link', async () => {
    const seen: number[] = []
    let next: string | undefined = '/users?limit=7'
    let pages = 0
    while (next !== undefined) {
      const response: { statusCode: number, headers: Record<string, string | string[] | number | undefined>, json: () => any } = await app.inject({ url: next })
      assert.equal(response.statusCode, 200)
      seen.push(...response.json().map((user: { user_id: number }) => user.user_id))
      next = /<([^>]+)>; rel="next"/.exec(String(response.headers.link))?.[1]
      pages++
    }
    assert.deepEqual(seen, Array.from({ length: 25 }, (_, i) => i + 1))
    assert.equal(pages, 4, 'no empty last page')
  })

  for (const query of ['limit=0', 'limit=101', 'limit=x', 'after=-1']) {
    it(`refuses ${query} with a 400 problem`, async () => {
      const response = await app.inject({ url: `/users?${query}` })
      assert.equal(response.statusCode, 400)
      assert.equal(response.json().errors[0].in, 'querystring')
    })
  }
})
