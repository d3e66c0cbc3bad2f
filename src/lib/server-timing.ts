// Collects per-branch durations for the Server-Timing response header (W3C Server Timing), so a
// client can see that a gathered response took as long as its slowest branch, not the sum.
import type { FastifyReply } from 'fastify'

export class ServerTiming {
  readonly #entries: Array<{ name: string, durationMs: number, description?: string }> = []

  /** `name` is a token (letters, digits, `-`, `_`, `.`); `description` any text (sent percent-encoded: a header holds ASCII only). */
  add (name: string, durationMs: number, description?: string): void {
    this.#entries.push({ name, durationMs, description })
  }

  /** Times `work` under `name`, whether it succeeds or fails. */
  async measure<T> (name: string, work: () => Promise<T>, description?: string): Promise<T> {
    const started = performance.now()
    try {
      return await work()
    } finally {
      this.add(name, performance.now() - started, description)
    }
  }

  toString (): string {
    return this.#entries.map(({ name, durationMs, description }) =>
      `${name};${description === undefined ? '' : `desc="${encodeURIComponent(Array.from(description).slice(0, 100).join('').toWellFormed())}";`}dur=${durationMs.toFixed(1)}`).join(', ')
  }
}

/** Runs a handler with a fresh ServerTiming and sends its header, whether the handler succeeds or fails. */
export async function withServerTiming<T> (reply: FastifyReply, handler: (timing: ServerTiming) => Promise<T>): Promise<T> {
  const timing = new ServerTiming()
  try {
    return await handler(timing)
  } finally {
    reply.header('server-timing', timing.toString())
  }
}
