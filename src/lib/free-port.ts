// A loopback port nobody listens on right now: the embedded PostgreSQL starts on one, and so do
// the servers started from tools/ (which may import this module; src/ imports nothing from there).
import net from 'node:net'

/**
 * Asks the kernel for a free port on 127.0.0.1 and releases it at once. Another process may take
 * it before the caller binds it: callers that can retry on EADDRINUSE should.
 */
export async function findFreePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = net.createServer()
    server.unref()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo
      server.close(() => { resolve(port) })
    })
  })
}
