// A bare Fastify + postgres.js server doing what data-api's /healthz and /users do, without its
// validation, logging, hooks and problem handling: the measure of what those cost.
import Fastify from 'fastify'
import postgres from 'postgres'

const sql = postgres(process.env.DATABASE_URL!, { max: 10 })
// LOG_LEVEL set: Fastify's default logger (pino, two lines per request) at that level.
const app = Fastify(process.env.LOG_LEVEL === undefined ? {} : { logger: { level: process.env.LOG_LEVEL } })
app.get('/healthz', async () => ({ status: 'ok' }))
app.get('/users', async (request) => {
  const { limit = '10', after = '0' } = request.query as { limit?: string, after?: string }
  return await sql`select id as user_id, name, email, created_at from users where id > ${Number(after)} order by id limit ${Number(limit)}`
})
const url = await app.listen({ port: Number(process.env.PORT ?? 0), host: '127.0.0.1' })
console.log(JSON.stringify({ listening: url }))
process.on('SIGTERM', () => { void app.close().then(async () => { await sql.end() }).then(() => process.exit(0)) })
