// Python virtual environments the project builds for its own tools (the FastAPI peer of the
// benchmark, the schemathesis fuzzer): `python3 -m venv` + `pip install -r requirements.txt`, once.
// The venv is rebuilt only when the requirements file or the base python3 changes (a stamp file in
// it holds both).
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import { promisify } from 'node:util'

const execFileAsync = promisify(execFile)

const STAMP_FILE = '.data-api-requirements'
const BASE_PYTHON = 'python3'
const INSTALL_TIMEOUT_MS = 15 * 60_000
const STDERR_KEPT_CHARS = 8_000

export interface VenvOptions {
  /** Where the venv lives, e.g. `.cache/fastapi-venv`. */
  venv: string
  /** A pip requirements file, pinned. */
  requirements: string
  /** What it is for, in messages: "the FastAPI peer". */
  purpose: string
  log: (line: string) => void
}

/** Builds the venv unless it is already there for the same requirements and python3; returns its python. */
export async function ensureVenv ({ venv, requirements, purpose, log }: VenvOptions): Promise<string> {
  const resolved = path.resolve(venv)
  const stamp = `${createHash('sha256').update(await fs.readFile(requirements)).digest('hex')} ${await basePythonVersion(purpose)}\n`
  if (!await isBuilt(resolved, stamp)) await buildVenv(resolved, requirements, stamp, purpose, log)
  return venvPython(resolved)
}

function venvPython (venv: string): string {
  return path.join(venv, 'bin', 'python')
}

async function isBuilt (venv: string, stamp: string): Promise<boolean> {
  return await readText(path.join(venv, STAMP_FILE)) === stamp && await exists(venvPython(venv))
}

/**
 * Builds the venv beside its final name and renames it into place, stamp included: an interrupted
 * build never leaves a half-made venv, and two builds at once (test files run in parallel) never
 * mix their files; the second to finish keeps the first one's. A renamed venv works as long as it
 * is used as `python -m …`, which is all we do (only the shebangs of its bin/ scripts keep the
 * build's path).
 */
async function buildVenv (venv: string, requirements: string, stamp: string, purpose: string, log: (line: string) => void): Promise<void> {
  log(`building the virtual environment of ${purpose} in ${venv} (pip install, needs PyPI; first run only)…`)
  const started = performance.now()
  const partial = `${venv}.${process.pid}.partial`
  await fs.mkdir(path.dirname(venv), { recursive: true })
  await fs.rm(partial, { recursive: true, force: true })
  const failed = (what: string, hint: string) => (error: unknown) => {
    throw new Error(`\`${what}\` failed while building the virtual environment of ${purpose}${hint}:\n${stderrOf(error)}`, { cause: error })
  }
  try {
    await run(BASE_PYTHON, ['-m', 'venv', partial]).catch(failed('python3 -m venv', ' (on Debian and Ubuntu, `python3 -m venv` needs the python3-venv package)'))
    await run(venvPython(partial), ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '-r', requirements])
      .catch(failed('pip install', ` (it installs ${requirements} from PyPI: is the network reachable?)`))
    await fs.writeFile(path.join(partial, STAMP_FILE), stamp)
    if (!await isBuilt(venv, stamp)) {
      await fs.rm(venv, { recursive: true, force: true })
      try {
        await fs.rename(partial, venv)
      } catch (error) {
        // Another build renamed its venv into place in between: use that one.
        if (!await isBuilt(venv, stamp)) throw error
      }
    }
  } finally {
    await fs.rm(partial, { recursive: true, force: true })
  }
  log(`built ${venv} in ${((performance.now() - started) / 1000).toFixed(1)} s`)
}

/** "Python 3.11.7 /usr/bin/python3.11": a new python3 (version or install) means a new venv. */
async function basePythonVersion (purpose: string): Promise<string> {
  try {
    const { stdout } = await execFileAsync(BASE_PYTHON, ['-c', 'import platform, sys; print("Python", platform.python_version(), sys.executable)'])
    return stdout.trim()
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new Error(`${purpose} needs Python 3 (${BASE_PYTHON}), which was not found on PATH. Install Python 3.9 or later with its venv module.`, { cause: error })
    }
    throw new Error(`\`${BASE_PYTHON}\` does not run: ${stderrOf(error)}`, { cause: error })
  }
}

async function run (command: string, args: string[]): Promise<void> {
  await execFileAsync(command, args, {
    env: { ...process.env, PIP_DISABLE_PIP_VERSION_CHECK: '1' },
    timeout: INSTALL_TIMEOUT_MS,
    maxBuffer: 64 * 1024 * 1024,
  })
}

function stderrOf (error: unknown): string {
  const stderr = ((error as { stderr?: string }).stderr ?? '').trim()
  return (stderr === '' ? (error as Error).message : stderr).slice(-STDERR_KEPT_CHARS)
}

async function readText (file: string): Promise<string | undefined> {
  return await fs.readFile(file, 'utf8').catch(() => undefined)
}

async function exists (file: string): Promise<boolean> {
  return await fs.access(file).then(() => true, () => false)
}
