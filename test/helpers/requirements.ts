// Tests that need a tool npm does not install — Go (to build FerretDB, the MongoDB-wire server),
// Python (the FastAPI peer), Chromium (the browser test) — are skipped with a one-line hint naming
// the tool and what installs it when it is missing, so that `npm test` passes on a machine with
// Node alone. Under CI they are never skipped: there a missing tool fails them, since a green CI
// run must have run everything.
import { spawnSync } from 'node:child_process'

export const isCi = (process.env.CI ?? '') !== '' && process.env.CI !== 'false'

/** The reason to skip, for node:test's `skip` option, or false to run. */
export function skipUnless (available: boolean, hint: string): string | false {
  return available || isCi ? false : hint
}

/** Set by global-setup.ts when no MongoDB-wire server could be had (never under CI: it fails there). */
export function skipWithoutMongo (): string | false {
  return process.env.TEST_MONGODB_SKIP ?? false
}

export function skipWithoutPython (): string | false {
  const found = spawnSync('python3', ['--version'], { stdio: 'ignore' }).status === 0
  return skipUnless(found, 'python3 not found: install Python 3.11+ to run the FastAPI peer tests (they build .cache/fastapi-venv from PyPI)')
}
