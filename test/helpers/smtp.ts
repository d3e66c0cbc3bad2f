// A real SMTP server (the smtp-server package) on 127.0.0.1 that records what it accepts, with
// fault injection: hold each message before accepting it, or refuse connections while "down".
import type { AddressInfo } from 'node:net'
import { SMTPServer } from 'smtp-server'

export interface ReceivedMail { to: string[], raw: string }

export interface FakeSmtp {
  url: string
  received: ReceivedMail[]
  /** Messages whose DATA has started arriving (accepted or not yet). */
  dataStarted: number
  /** Each message waits this long before it is accepted. */
  holdMs: number
  /** Stops listening (connections are refused) until start() is called again. */
  stop: () => Promise<void>
  start: () => Promise<void>
  close: () => Promise<void>
  waitFor: (count: number, timeoutMs: number) => Promise<ReceivedMail[]>
}

export async function startFakeSmtp (): Promise<FakeSmtp> {
  let port = 0
  let server: SMTPServer | undefined
  const closedSessions = new Set<string>()
  const holds = new Map<string, NodeJS.Timeout>()
  const fake: FakeSmtp = {
    url: '',
    received: [],
    dataStarted: 0,
    holdMs: 0,
    start: async () => {
      server = new SMTPServer({
        authOptional: true,
        disabledCommands: ['STARTTLS'],
        logger: false,
        // A client that vanishes while its message is held (a killed worker) has delivered nothing.
        onClose (session) {
          closedSessions.add(session.id)
          clearTimeout(holds.get(session.id))
        },
        onData (stream, session, callback) {
          fake.dataStarted++
          const chunks: Buffer[] = []
          stream.on('data', (chunk: Buffer) => chunks.push(chunk))
          stream.on('end', () => {
            holds.set(session.id, setTimeout(() => {
              if (closedSessions.has(session.id)) return
              fake.received.push({ to: session.envelope.rcptTo.map((rcpt) => rcpt.address), raw: Buffer.concat(chunks).toString() })
              callback()
            }, fake.holdMs))
          })
        },
      })
      server.on('error', () => {})
      await new Promise<void>((resolve) => server!.listen(port, '127.0.0.1', () => { resolve() }))
      port = (server.server.address() as AddressInfo).port
      fake.url = `smtp://127.0.0.1:${port}`
    },
    stop: async () => {
      await new Promise<void>((resolve) => server!.close(() => { resolve() }))
    },
    close: async () => { await fake.stop() },
    waitFor: async (count, timeoutMs) => {
      const deadline = Date.now() + timeoutMs
      while (fake.received.length < count) {
        if (Date.now() > deadline) throw new Error(`expected ${count} emails within ${timeoutMs} ms, got ${fake.received.length}`)
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
      return fake.received
    },
  }
  await fake.start()
  return fake
}
