// Servers we start (PostgreSQL here; FerretDB and the other servers that tools/ starts): spawned
// out of the terminal's reach, stopped by us in order, and never left behind.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process'

/** Each step sends its signal and waits up to its time for the process to exit. */
export type StopSteps = ReadonlyArray<readonly [NodeJS.Signals, number]>

export const TERMINATE: StopSteps = [['SIGTERM', 5_000], ['SIGKILL', 5_000]]

/**
 * Spawns a server this process owns. It runs in a process group of its own: a terminal's Ctrl-C
 * goes to the whole foreground group, and would stop it the instant it stops us, while our
 * in-flight requests still need it; so only we get the signal, and stop it after them. If this
 * process exits without stopping it (an uncaught exception, process.exit), `exitSignal` is sent
 * on the way out. (SIGKILL leaves no way out: the next start reclaims what is left.)
 */
export function spawnOwned (command: string, args: readonly string[], options: SpawnOptions & { exitSignal?: NodeJS.Signals } = {}): ChildProcess {
  const { exitSignal = 'SIGKILL', ...spawnOptions } = options
  const child = spawn(command, args, { ...spawnOptions, detached: true })
  const killOnExit = (): void => { child.kill(exitSignal) }
  process.once('exit', killOnExit)
  child.once('exit', () => { process.removeListener('exit', killOnExit) })
  return child
}

/** Asks a child to stop, waits, then insists. */
export async function stopProcess (child: ChildProcess, steps: StopSteps = TERMINATE): Promise<void> {
  // Never spawned (no pid), or already gone.
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((resolve) => child.once('exit', () => { resolve() }))
  for (const [signal, waitMs] of steps) {
    child.kill(signal)
    let timer: NodeJS.Timeout | undefined
    const done = await Promise.race([
      exited.then(() => true),
      new Promise<boolean>((resolve) => { timer = setTimeout(resolve, waitMs, false) }),
    ])
    clearTimeout(timer)
    if (done) return
  }
}
