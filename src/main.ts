// The `data-api` command line: serve | worker | migrate | seed | keys.
import fs from 'node:fs'
import { Command, InvalidArgumentError } from 'commander'
import { pino, type Logger } from 'pino'
import { ConfigError, loadConfig, type Config } from './config.ts'
import { createApiKeysRepository } from './auth/api-keys.ts'
import { openDatabase } from './db/database.ts'
import { migrate } from './db/migrate.ts'
import { seedUsersAndOrders } from './routes/users/seed.ts'
import { serve, work } from './server.ts'
import { serveCluster } from './cluster.ts'
import { openCatalogStore } from './routes/products/catalog.ts'

/**
 * The configuration and the logger of a command. `serve` and `worker` write JSON lines to stdout,
 * for a log collector; one-off commands (keys, seed, migrate) log to stderr, so that their stdout
 * holds their output alone (`keys create … | tail -1` is the key) — as readable lines when stderr
 * is a terminal, JSON otherwise.
 */
async function setUp (kind: 'service' | 'one-off'): Promise<{ config: Config, logger: Logger }> {
  // An optional .env in the working directory; real environment variables win over it.
  if (fs.existsSync('.env')) process.loadEnvFile('.env')
  let config: Config
  try {
    config = loadConfig()
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error
    console.error(`data-api: invalid configuration: ${error.message}`)
    process.exit(1)
  }
  // pino's default destination: SonicBoom on stdout, writing each line without blocking the loop
  // and flushing at exit. Another destination measured no faster on one core: building a line
  // costs more than writing it.
  if (kind === 'service') return { config, logger: pino({ level: config.logLevel }) }
  if (process.stderr.isTTY !== true) return { config, logger: pino({ level: config.logLevel }, pino.destination(2)) }
  const { default: pretty } = await import('pino-pretty')
  return { config, logger: pino({ level: config.logLevel }, pretty({ destination: 2, ignore: 'pid,hostname', sync: true })) }
}

async function run (kind: 'service' | 'one-off', action: (config: Config, logger: Logger) => Promise<void>): Promise<void> {
  const { config, logger } = await setUp(kind)
  try {
    await action(config, logger)
  } catch (error) {
    logger.fatal({ err: error }, (error as Error).message)
    // Let pino flush, then leave with a failure status.
    process.exitCode = 1
  }
}

const program = new Command('data-api')
  .description('A fast, correct async data service: the FastAPI async lesson built for real.')
  .showHelpAfterError()

program.command('serve')
  .description('Run the HTTP API (with an embedded PostgreSQL when DATABASE_URL is unset) and, unless --no-worker, a job worker')
  .option('--no-worker', 'do not run a job worker in this process (run `data-api worker` separately)')
  .option('--processes <n>', 'run the API in n processes sharing the port (node:cluster), supervised by this one', positiveInteger)
  .action(async (options: { worker: boolean, processes?: number }) => {
    const { processes } = options
    await run('service', async (config, logger) => {
      if (processes === undefined) await serve(config, logger, options)
      else await serveCluster(config, logger, { workers: processes, worker: options.worker })
    })
  })

program.command('migrate')
  .description('Apply pending database migrations and exit (also done by serve at start)')
  .action(async () => {
    await run('one-off', async (config, logger) => {
      await using database = await openDatabase(config, logger, { max: 1, attach: true })
      const applied = await migrate(database.sql)
      logger.info({ applied }, applied.length === 0 ? 'database is up to date' : `applied ${applied.length} migration(s)`)
    })
  })

program.command('worker')
  .description('Run the background job worker (welcome emails …) until SIGTERM/SIGINT')
  .action(async () => { await run('service', work) })

program.command('seed')
  .description('Append deterministic sample data: users with orders (COPY) and/or products; the same options on the same data give the same rows')
  .option('--users <n>', 'users to add', positiveInteger)
  .option('--orders-per-user <n>', 'orders for each new user', nonNegativeInteger, 10)
  .option('--products <n>', 'products to add to the catalog store: MongoDB when MONGODB_URL is set, else PostgreSQL', positiveInteger)
  .option('--seed <n>', 'generator seed', nonNegativeInteger, 42)
  .action(async (options: { users?: number, ordersPerUser: number, products?: number, seed: number }, command: Command) => {
    // Appending rows unasked would be a surprise: say how many of what.
    if (options.users === undefined && options.products === undefined) command.error('data-api seed: say what to add: --users N (with --orders-per-user, default 10) and/or --products N')
    await run('one-off', async (config, logger) => {
      await using database = await openDatabase(config, logger, { max: 1, attach: true })
      await migrate(database.sql)
      if (options.users !== undefined) {
        const result = await seedUsersAndOrders(database.sql, { users: options.users, ordersPerUser: options.ordersPerUser, seed: options.seed })
        logger.info(result, `seeded ${result.users} users and ${result.orders} orders in ${result.ms} ms`)
      }
      if (options.products !== undefined) {
        const catalog = await openCatalogStore(config.mongodb, database.sql, logger)
        try {
          const result = await catalog.seedProducts({ count: options.products, seed: options.seed })
          logger.info({ ...result, store: catalog.kind }, `seeded ${result.products} products into the ${catalog.kind} catalog store in ${result.ms} ms`)
        } finally {
          await catalog.close()
        }
      }
    })
  })

/** Runs `action` on a migrated database opened for a one-off command. */
async function withDatabase<T> (action: (sql: Parameters<typeof migrate>[0]) => Promise<T>): Promise<T | undefined> {
  let result: T | undefined
  await run('one-off', async (config, logger) => {
    await using database = await openDatabase(config, logger, { max: 1, attach: true })
    await migrate(database.sql)
    result = await action(database.sql)
  })
  return result
}

const keys = program.command('keys').description('Manage the API keys that writes (and, with REQUIRE_KEY_FOR_READS, reads) of the Data API need')

keys.command('create')
  .description('Create a key and print it; it is shown this once and stored only as a hash')
  .requiredOption('--name <name>', 'who or what the key is for')
  .option('--admin', 'an admin key: it may write (patch, delete, delete rows of) every data set, not only those it created, and the demo data set')
  .action(async ({ name, admin }: { name: string, admin?: boolean }) => {
    const created = await withDatabase(async (sql) => await createApiKeysRepository(sql).create(name, { isAdmin: admin === true }))
    if (created === undefined) return
    // stdout holds the key alone (logs and this note go to stderr): `… | tail -1` captures it.
    console.error(`${admin === true ? 'Admin API key' : 'API key'} ${created.id} (${name}) created. It is not stored and will not be shown again:`)
    console.log(created.key)
  })

keys.command('list')
  .description('List keys (id, name, prefix, role, created, status)')
  .action(async () => {
    const list = await withDatabase(async (sql) => await createApiKeysRepository(sql).list())
    if (list === undefined) return
    console.log('id\tname\tprefix\trole\tcreated\tstatus')
    for (const key of list) {
      console.log(`${key.id}\t${key.name}\t${key.prefix}…\t${key.is_admin ? 'admin' : 'owner'}\t${key.created_at.toISOString()}\t${key.revoked_at === null ? 'active' : `revoked ${key.revoked_at.toISOString()}`}`)
    }
  })

keys.command('revoke')
  .description('Revoke a key by its id or its prefix (as shown by `keys list`); it stops working at once')
  .argument('<id-or-prefix>')
  .action(async (idOrPrefix: string) => {
    const revoked = await withDatabase(async (sql) => await createApiKeysRepository(sql).revoke(idOrPrefix.replace(/…$/, '')))
    if (revoked === undefined) return
    if (revoked === 0) {
      console.error(`data-api keys revoke: no active key ${idOrPrefix}`)
      process.exitCode = 1
    } else {
      console.log(`revoked ${idOrPrefix}`)
    }
  })

function positiveInteger (value: string): number {
  const number = nonNegativeInteger(value)
  if (number === 0) throw new InvalidArgumentError('must be at least 1')
  return number
}

function nonNegativeInteger (value: string): number {
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value))) throw new InvalidArgumentError('must be a whole number')
  return Number(value)
}

await program.parseAsync()
