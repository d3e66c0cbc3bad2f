// A bare Fastify + postgres.js server doing what data-api's /healthz and /users do, without its
// validation, logging, hooks and problem handling: the measure of what those cost.
// GET /rows runs one fixed SELECT given in ROWS_SQL with the parameters of ROWS_PARAMS (a JSON
// array of their text, as postgres.js sent them): bench/datasets.ts hands it the exact query that
// data-api's rows route runs, so that the difference is what data-api does around the query.
import Fastify from 'fastify'
import postgres from 'postgres'

const sql = postgres(process.env.DATABASE_URL!, { max: 10 })
const rowsSql = process.env.ROWS_SQL
const rowsParameters = JSON.parse(process.env.ROWS_PARAMS ?? '[]') as string[]
// LOG_LEVEL set: Fastify's default logger (pino, two lines per request) at that level.
const app = Fastify(process.env.LOG_LEVEL === undefined ? {} : { logger: { level: process.env.LOG_LEVEL } })
app.get('/healthz', async () => ({ status: 'ok' }))
app.get('/users', async (request) => {
  const { limit = '10', after = '0' } = request.query as { limit?: string, after?: string }
  return await sql`select id as user_id, name, email, created_at from users where id > ${Number(after)} order by id limit ${Number(limit)}`
})
if (rowsSql !== undefined) {
  app.get('/rows', async () => ({ rows: await sql.unsafe(rowsSql, rowsParameters, { prepare: true }) }))
}
const url = await app.listen({ port: Number(process.env.PORT ?? 0), host: '127.0.0.1' })
console.log(JSON.stringify({ listening: url }))
process.on('SIGTERM', () => { void app.close().then(async () => { await sql.end() }).then(() => process.exit(0)) })
