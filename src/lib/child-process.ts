// Stopping a child process we started: ask, wait, then insist. Every server this project starts
// (PostgreSQL, FerretDB, the benchmark's peers) stops through here.
import type { ChildProcess } from 'node:child_process'

/** Each step sends its signal and waits up to its time for the process to exit. */
export type StopSteps = ReadonlyArray<readonly [NodeJS.Signals, number]>

export const TERMINATE: StopSteps = [['SIGTERM', 5_000], ['SIGKILL', 5_000]]

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
