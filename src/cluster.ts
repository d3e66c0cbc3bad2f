// `data-api serve --processes N`: the HTTP API in N processes that share one port (node:cluster).
//
// The primary owns what must exist once: the database (the embedded PostgreSQL, or the DATABASE_URL
// server, which it only checks), its migrations, the job queue's tables and queues, and the demo
// data (resources.ts, opened without a job worker). Then it forks N workers; each is a complete `serve` (startServer) on that database, whose
// URL reaches it as DATABASE_URL, with a job worker of its own unless --no-worker (pg-boss hands
// each job to one of them). The primary serves no HTTP: with node's default round-robin scheduling
// it accepts connections and passes each to the next worker. All workers share the port, PORT=0
// included: the first listen picks it, later ones (replacements too, while one worker still
// listens) get the same one.
//
// A worker that dies is replaced; when replacements keep dying young, the primary gives up and
// exits 1. On SIGTERM/SIGINT the primary sends each worker SIGTERM (each shuts down gracefully, as
// a single `serve` does), waits for them, then stops PostgreSQL. No worker outlives its primary:
// when the primary dies, even by SIGKILL, the IPC channel closes and node:cluster makes each worker
// exit at once (that primary's embedded PostgreSQL is reclaimed by the next start, as after a
// SIGKILLed single `serve`).
import cluster, { type Worker } from 'node:cluster'
import type { Logger } from 'pino'
import type { Config } from './config.ts'
import { openDatabase } from './db/database.ts'
import { LISTENER_CONNECTIONS } from './db/listener.ts'
import { JOB_QUEUE_CONNECTIONS } from './jobs/queue.ts'
import { stopProcess } from './lib/child-process.ts'
import { openResources, type Resources } from './resources.ts'
import { exitOnSignal, startServer, type RunningServer, type ShutDown } from './server.ts'

export interface ClusterOptions {
  workers: number
  /** Run a job worker in each HTTP worker (`--no-worker`: false). */
  worker: boolean
}

/** A worker that dies sooner than this after it started listening "died young". */
const MIN_UPTIME_MS = 10_000
/** This many young deaths in a row is a crash loop: the primary gives up. */
const MAX_YOUNG_DEATHS = 5
/** PostgreSQL's default max_connections (what initdb writes). */
const POSTGRES_DEFAULT_MAX_CONNECTIONS = 100
/** Connections beyond the workers' own: `data-api worker`/`keys`/`migrate` beside serve, psql, … */
const CONNECTION_HEADROOM = 20
const LISTENING = 'data-api:listening'

interface ListeningMessage { type: typeof LISTENING, url: string }

function isListeningMessage (message: unknown): message is ListeningMessage {
  return typeof message === 'object' && message !== null && (message as { type?: unknown }).type === LISTENING
}

/** Runs the primary, or, in a process it forked, a worker. */
export async function serveCluster (config: Config, logger: Logger, options: ClusterOptions): Promise<void> {
  if (cluster.isPrimary) await runPrimary(config, logger, options)
  else await runWorker(config, logger, options)
}

async function runPrimary (config: Config, logger: Logger, options: ClusterOptions): Promise<void> {
  const resources = new AsyncDisposableStack()
  let isStopping = false
  let starting: Promise<void> = Promise.resolve()
  // Signals count from the first moment: a SIGTERM during the start lets the start settle (so
  // that nothing it is opening is missed), forks no more workers, then closes what exists.
  const shutDown = exitOnSignal(async () => {
    isStopping = true
    await starting.catch(() => {})
    await resources.disposeAsync()
  }, logger, config.shutdownGraceMs)

  starting = (async () => {
    try {
      const shared = await openSharedResources(config, logger, options.workers)
      resources.defer(shared.close)
      if (isStopping) return
      const workers = superviseWorkers(options.workers, { DATABASE_URL: shared.database.url }, config, logger, shutDown)
      resources.defer(async () => { await workers.stop() })
      const { url, pids } = await workers.listening
      logger.info({ url, docs: `${url}/docs`, workers: options.workers, worker_pids: pids }, 'data-api listening')
    } catch (error) {
      await resources.disposeAsync()
      throw error
    }
  })()
  await starting
}

/**
 * Opens the database with a small pool of the primary's own, checks that N workers' pools fit into
 * it, then the rest of the resources on it (resources.ts), without a job worker: the migrations,
 * the job queue's tables and queues (so that N workers starting at once do not race to), and the
 * demo data on an embedded server, as a single `serve` would. They stay open while the workers run.
 *
 * Connection budget: each worker holds up to DATABASE_POOL_MAX connections plus the job queue's
 * own pool and a listener's connection (and SQL_QUERIES_POOL_MAX with SQL_QUERIES=true), and the
 * primary one plus its job queue's and listener's. The embedded server is started with
 * max_connections raised to fit when the default does not; a DATABASE_URL server is not ours to
 * configure, so too small a one is refused at start rather than answering "too many clients"
 * under load.
 */
async function openSharedResources (config: Config, logger: Logger, workers: number): Promise<Resources> {
  const perProcess = JOB_QUEUE_CONNECTIONS + LISTENER_CONNECTIONS
  // The reader pool of SQL queries serves HTTP requests only: the workers use it, the primary never.
  const sqlQueries = config.datasets.sqlQueries.enabled ? config.datasets.sqlQueries.poolMax : 0
  const needed = workers * (config.database.poolMax + perProcess + sqlQueries) + 1 + perProcess
  const sized = needed + CONNECTION_HEADROOM
  const database = await openDatabase(config, logger, {
    max: 1,
    serverMaxConnections: sized > POSTGRES_DEFAULT_MAX_CONNECTIONS ? sized : undefined,
  })
  try {
    const [{ allowed }] = await database.sql<[{ allowed: number }]>`select current_setting('max_connections')::int as allowed`
    if (needed > allowed) {
      const sqlPart = sqlQueries > 0 ? ` + SQL_QUERIES_POOL_MAX ${sqlQueries}` : ''
      throw new Error(`--processes ${workers} needs up to ${needed} PostgreSQL connections (${workers} × (DATABASE_POOL_MAX ${config.database.poolMax} + ${perProcess} for the job queue and the change listener${sqlPart}) + this process's ${1 + perProcess}), but the server allows ${allowed} (max_connections). Lower --processes or DATABASE_POOL_MAX, or raise max_connections.`)
    }
  } catch (error) {
    await database.close()
    throw error
  }
  return await openResources(config, logger, { worker: false, database })
}

interface SupervisedWorkers {
  /** The URL and the workers' pids, once all listen; rejects when one exits before that. */
  listening: Promise<{ url: string, pids: number[] }>
  /** SIGTERM to every worker (SIGKILL past the grace period and more); resolves once all have exited. */
  stop: () => Promise<void>
}

function superviseWorkers (count: number, env: Record<string, string>, config: Config, logger: Logger, shutDown: ShutDown): SupervisedWorkers {
  const listeningSince = new Map<Worker, number>()
  const listening = Promise.withResolvers<{ url: string, pids: number[] }>()
  let isStarted = false
  let isStopping = false
  let youngDeaths = 0

  const fork = (): Worker => {
    const worker = cluster.fork(env)
    worker.on('message', (message: unknown) => {
      if (!isListeningMessage(message)) return
      listeningSince.set(worker, Date.now())
      if (isStarted) {
        logger.info({ worker_pid: worker.process.pid, url: message.url }, 'replacement worker listening')
      } else if (listeningSince.size === count) {
        isStarted = true
        listening.resolve({ url: message.url, pids: [...listeningSince.keys()].map((listener) => listener.process.pid!) })
      }
    })
    return worker
  }

  cluster.on('exit', (worker, code, signal) => {
    const since = listeningSince.get(worker)
    listeningSince.delete(worker)
    const exit = { worker_pid: worker.process.pid, code, signal }
    if (isStopping) {
      logger.info(exit, 'worker stopped')
    } else if (!isStarted) {
      listening.reject(new Error(`worker ${exit.worker_pid} exited (${code ?? signal}) before it was listening; its log lines above say why`))
    } else {
      youngDeaths = since === undefined || Date.now() - since < MIN_UPTIME_MS ? youngDeaths + 1 : 0
      if (youngDeaths >= MAX_YOUNG_DEATHS) {
        logger.fatal({ ...exit, youngDeaths }, `workers keep dying within ${MIN_UPTIME_MS / 1000} s of starting (${youngDeaths} in a row): giving up`)
        shutDown({ reason: 'crash loop' }, 1)
        return
      }
      const replacement = fork()
      logger.error({ ...exit, replacement_pid: replacement.process.pid }, 'worker exited unexpectedly; started a replacement')
    }
  })

  for (let i = 0; i < count; i++) fork()
  return {
    listening: listening.promise,
    stop: async () => {
      isStopping = true
      // Each worker's own shutdown (exitOnSignal) may take SHUTDOWN_GRACE_MS and closing its pools;
      // this stays inside the primary's own hard deadline (grace + 40 s), leaving time for PostgreSQL.
      const steps = [['SIGTERM', config.shutdownGraceMs + 30_000], ['SIGKILL', 5_000]] as const
      await Promise.all(Object.values(cluster.workers ?? {}).map(async (worker) => {
        if (worker !== undefined) await stopProcess(worker.process, steps)
      }))
    },
  }
}

async function runWorker (config: Config, logger: Logger, options: ClusterOptions): Promise<void> {
  // The IPC channel to the primary keeps a worker's event loop alive, so a failed start exits
  // explicitly (pino writes what it still holds on exit).
  let server: RunningServer
  try {
    server = await startServer(config, logger, { worker: options.worker })
  } catch (error) {
    logger.fatal({ err: error }, `worker could not start: ${(error as Error).message}`)
    process.exit(1)
  }
  exitOnSignal(server.close, logger, config.shutdownGraceMs)
  logger.info({ url: server.url }, 'worker listening')
  process.send?.({ type: LISTENING, url: server.url } satisfies ListeningMessage)
}
