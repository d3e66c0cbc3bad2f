// GET /datasets/{id}/events: a data set's progress as server-sent events, so that a page or a CLI
// follows an import or a write without polling.
//
// Every change of a data set (its row: status, rows so far, error; its columns; its writes, with
// their rows read so far) is announced by PostgreSQL at commit on DATASET_CHANGED (migrations
// 0007 and 0013), to every process, whichever process did the work. This process's listener hands
// each announcement here; the state of an id someone follows is then read once for all of its
// streams (a read running already is followed by one more, never by one per announcement), and
// each stream is sent what changed since what it was sent last. A stream holds no database
// connection and no thread between reads. While the listener is down (announcements are lost
// then), the followed states are read every POLL_MS instead, and once it listens again all of
// them at once: a stream misses no final state, only intermediate ones.
import { PassThrough } from 'node:stream'
import type { Logger } from 'pino'
import type { ListenHandlers } from '../../db/listener.ts'
import { Problem } from '../../lib/errors.ts'
import type { Dataset, DatasetWrite, EventName } from './schemas.ts'

/** What a stream is sent with every event: the data set's state and its latest write. */
export interface DatasetState {
  dataset: Pick<Dataset, 'id' | 'status' | 'rows' | 'error' | 'updated_at'>
  write: DatasetWrite | null
}

export interface DatasetEventsOptions {
  /** The state of a data set now; undefined when there is no such data set. */
  read: (id: number) => Promise<DatasetState | undefined>
  maxStreams: number
  log: Logger
  /** How often followed states are read while no announcement can arrive. */
  pollMs?: number
  /** A comment line this often keeps proxies from closing a quiet stream. */
  heartbeatMs?: number
}

const POLL_MS = 2_000
const HEARTBEAT_MS = 15_000
/** What a browser's EventSource waits before it connects again (the `retry` field). */
const RETRY_MS = 2_000

interface Stream {
  /** Sends the state if it differs from the last one sent; ends the stream when the data set is gone. */
  deliver: (state: DatasetState | undefined) => void
  end: () => void
}

/** The event a stream is sent for `next` after `last`; undefined when nothing it shows changed. */
export function eventFor (last: DatasetState | undefined, next: DatasetState | undefined): EventName | undefined {
  if (next === undefined) return 'deleted'
  if (last === undefined) return 'state'
  if (last.dataset.status !== next.dataset.status) return 'status'
  if (last.write?.id !== next.write?.id || last.write?.status !== next.write?.status) return 'write'
  const running = next.dataset.status === 'importing' || next.write?.status === 'running'
  if (running && (last.dataset.rows !== next.dataset.rows || last.write?.rows_read !== next.write?.rows_read)) return 'progress'
  if (last.dataset.rows !== next.dataset.rows || String(last.dataset.updated_at) !== String(next.dataset.updated_at)) return 'change'
  return undefined
}

export class DatasetEvents implements ListenHandlers {
  readonly #options: Required<DatasetEventsOptions>
  readonly #streams = new Map<number, Set<Stream>>()
  /** Ids being read now, and those announced again meanwhile (read once more after). */
  readonly #reading = new Set<number>()
  readonly #again = new Set<number>()
  #poll: NodeJS.Timeout | undefined
  #open = 0
  #closed = false

  constructor (options: DatasetEventsOptions) {
    this.#options = { pollMs: POLL_MS, heartbeatMs: HEARTBEAT_MS, ...options }
    this.#startPolling() // until the listener says it listens
  }

  /** Streams open now. */
  get openStreams (): number { return this.#open }

  /**
   * A stream of the events of data set `id`, starting with its state now (`first`, read by the
   * caller: a missing data set is its 404); 503 when MAX streams are open.
   */
  open (id: number, first: DatasetState): PassThrough {
    if (this.#closed) throw new Problem('service-unavailable', 'The service is shutting down.')
    if (this.#open >= this.#options.maxStreams) {
      throw new Problem('service-unavailable', `${this.#options.maxStreams} event streams are open on this process (DATASET_EVENTS_MAX_STREAMS); retry shortly.`, { retryAfterSeconds: 5 })
    }
    const body = new PassThrough()
    let sequence = 0
    let last: DatasetState | undefined
    const write = (text: string): void => { if (!body.writableEnded) body.write(text) }
    const heartbeat = setInterval(() => { write(': keep-alive\n\n') }, this.#options.heartbeatMs)
    heartbeat.unref()
    const stream: Stream = {
      deliver: (state) => {
        const event = eventFor(last, state)
        if (event === undefined) return
        last = state
        write(`id: ${++sequence}\nevent: ${event}\ndata: ${JSON.stringify(state ?? { dataset: { id }, write: null })}\n\n`)
        if (event === 'deleted') stream.end()
      },
      end: () => { body.end() },
    }
    let followers = this.#streams.get(id)
    if (followers === undefined) this.#streams.set(id, followers = new Set())
    followers.add(stream)
    this.#open++
    // Ended by us (deleted, shutdown) or by the client (gone: Fastify destroys the body).
    body.once('close', () => {
      clearInterval(heartbeat)
      this.#open--
      followers.delete(stream)
      if (followers.size === 0 && this.#streams.get(id) === followers) this.#streams.delete(id)
    })
    write(`retry: ${RETRY_MS}\n\n`)
    stream.deliver(first)
    return body
  }

  notify (payload: string): void {
    const id = Number(payload)
    if (Number.isSafeInteger(id)) {
      if (this.#streams.has(id)) this.#refresh(id)
    } else {
      this.#refreshAll()
    }
  }

  listening (): void {
    clearInterval(this.#poll)
    this.#poll = undefined
    this.#refreshAll() // what changed while nothing was heard
  }

  lost (): void {
    this.#startPolling()
  }

  /** Ends every stream (the server is closing: its connections must end for it to close). */
  close (): void {
    this.#closed = true
    clearInterval(this.#poll)
    for (const followers of this.#streams.values()) for (const stream of followers) stream.end()
  }

  #startPolling (): void {
    if (this.#poll !== undefined || this.#closed) return
    this.#poll = setInterval(() => { this.#refreshAll() }, this.#options.pollMs)
    this.#poll.unref()
  }

  #refreshAll (): void {
    for (const id of this.#streams.keys()) this.#refresh(id)
  }

  #refresh (id: number): void {
    if (this.#reading.has(id)) {
      this.#again.add(id)
      return
    }
    this.#reading.add(id)
    void (async () => {
      try {
        const state = await this.#options.read(id)
        for (const stream of this.#streams.get(id) ?? []) stream.deliver(state)
      } catch (error) {
        // The database is away: read again in a while (an announcement may come sooner).
        this.#options.log.warn({ err: error, dataset_id: id }, 'cannot read a followed data set\'s state')
        setTimeout(() => { if (this.#streams.has(id) && !this.#closed) this.#refresh(id) }, this.#options.pollMs).unref()
      } finally {
        this.#reading.delete(id)
        if (this.#again.delete(id) && this.#streams.has(id)) this.#refresh(id)
      }
    })()
  }
}
