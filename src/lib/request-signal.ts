// An AbortSignal that fires when the client goes away before the response is finished, so that a
// handler's queries, timers and upstream calls stop with it. It listens on the response's 'close'
// (the request's 'close' fires early once the body has been read: fastify#4690).
import type { FastifyReply } from 'fastify'

export class ClientClosedError extends Error {
  constructor () {
    super('The client closed the connection before the response was sent.')
    this.name = 'AbortError'
  }
}

export function abortOnDisconnect (reply: FastifyReply): AbortSignal {
  const controller = new AbortController()
  const response = reply.raw
  if (response.destroyed) {
    controller.abort(new ClientClosedError())
  } else {
    response.once('close', () => {
      if (!response.writableFinished) controller.abort(new ClientClosedError())
    })
  }
  return controller.signal
}
