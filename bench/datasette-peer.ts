// The Datasette peer of bench/datasets.ts: the same CSV loaded into SQLite by sqlite-utils and
// served by Datasette, both from a Python virtual environment of their own (.cache/datasette-venv,
// bench/peers/datasette/requirements.txt, every package pinned).
//
//   ensureDatasetteVenv(cacheDir, log)              → the venv's python (built once per requirements)
//   loadSqlite({ python, csv, db, columns, cpu })   → { insertMs, prepareMs }
//   startDatasette({ python, db, cpu, settings? })  → { url, pid, pinnedCpu, output(), stop() }
import { execFile } from 'node:child_process'
import path from 'node:path'
import { promisify } from 'node:util'
import { findFreePort } from '../src/lib/free-port.ts'
import { ensureVenv } from '../tools/python-venv.ts'
import { pinned, PROJECT_ROOT } from '../tools/processes.ts'
import { startPythonServer, type PythonServer } from './python-server.ts'

const REQUIREMENTS = path.join(PROJECT_ROOT, 'bench', 'peers', 'datasette', 'requirements.txt')
const VENV_NAME = 'datasette-venv'
const START_TIMEOUT_MS = 60_000
const LOAD_TIMEOUT_MS = 60 * 60_000

/**
 * Datasette's settings for the bench, all defaults but these (each says why):
 * - suggest_facets off: by default every first page of a table also runs facet-suggestion queries
 *   (up to 50 ms each); data-api has no facets, so leaving it on would time work data-api never does.
 * - max_csv_mb 0: by default a streamed CSV stops at 100 MB, short of 10 M rows; the export must be whole.
 * num_sql_threads stays at its default of 3: SQLite reads run in that thread pool, the server is
 * pinned to one core either way, and data-api's pool is its own default too.
 * The table URLs also add `_nocount=1`, for the same reason as suggest_facets: Datasette's table
 * page counts the (filtered) rows, a whole scan data-api's pages do not make.
 */
const SETTINGS: Array<[string, string]> = [['suggest_facets', 'off'], ['max_csv_mb', '0']]

export type DatasettePeer = PythonServer

/** `<cacheDir>/datasette-venv` with requirements.txt installed (built once); returns the venv's python. */
export async function ensureDatasetteVenv (cacheDir: string, log: (line: string) => void): Promise<string> {
  return await ensureVenv({ venv: path.join(cacheDir, VENV_NAME), requirements: REQUIREMENTS, purpose: 'the Datasette peer', log })
}

async function runPinned (cpu: number | undefined, python: string, args: string[]): Promise<number> {
  const [command, pinnedArgs] = await pinned(cpu, python, args)
  const started = performance.now()
  await promisify(execFile)(command, pinnedArgs, { timeout: LOAD_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024 })
  return performance.now() - started
}

/**
 * The CSV into table `rows` of a new SQLite file, as a Datasette user does it:
 * `sqlite-utils insert db rows data.csv --csv` (sqlite-utils 4 detects the column types by default:
 * the old `--detect-types` flag is gone). Timed: `insertMs`.
 * Then, timed apart (`prepareMs`, the counterpart of data-api's statistics + index job):
 * - `active` made 0/1 integers: sqlite-utils keeps "true"/"false" as text, and Datasette's
 *   `active=1` filter (SQLite has no boolean type) needs numbers;
 * - one index per column (`sqlite-utils create-index`), as data-api's statistics job makes one
 *   (column, _row) index per column: a SQLite index holds the rowid too, so the same shape;
 * - `sqlite-utils analyze`.
 */
export async function loadSqlite ({ python, csv, db, columns, booleanColumns, cpu }: { python: string, csv: string, db: string, columns: string[], booleanColumns: string[], cpu?: number }): Promise<{ insertMs: number, prepareMs: number }> {
  const sqliteUtils = ['-m', 'sqlite_utils']
  const insertMs = await runPinned(cpu, python, [...sqliteUtils, 'insert', db, 'rows', csv, '--csv'])
  let prepareMs = 0
  for (const column of booleanColumns) {
    prepareMs += await runPinned(cpu, python, [...sqliteUtils, 'query', db, `update rows set "${column}" = case "${column}" when 'true' then 1 when 'false' then 0 end`])
    prepareMs += await runPinned(cpu, python, [...sqliteUtils, 'transform', db, 'rows', '--type', column, 'integer'])
  }
  for (const column of columns) prepareMs += await runPinned(cpu, python, [...sqliteUtils, 'create-index', db, 'rows', column])
  // The planner's statistics, as the bench gives PostgreSQL's (VACUUM ANALYZE): without them SQLite
  // picks the index of `active` for the filtered page and sorts a third of the table.
  prepareMs += await runPinned(cpu, python, [...sqliteUtils, 'analyze', db])
  return { insertMs, prepareMs }
}

/**
 * `datasette serve db` on a free loopback port, resolved once /-/versions.json answers 200;
 * `settings` beside (or overriding) SETTINGS.
 */
export async function startDatasette ({ python, db, cpu, settings = [] }: { python: string, db: string, cpu?: number, settings?: Array<[string, string]> }): Promise<DatasettePeer> {
  const port = await findFreePort()
  return await startPythonServer({
    name: 'datasette',
    python,
    args: ['-m', 'datasette', 'serve', db, '--host', '127.0.0.1', '--port', String(port), ...[...SETTINGS, ...settings].flatMap(([name, value]) => ['--setting', name, value])],
    port,
    cwd: path.dirname(db),
    cpu,
    probe: { path: '/-/versions.json', ready: (response) => response.status === 200 },
    startTimeoutMs: START_TIMEOUT_MS,
  })
}
