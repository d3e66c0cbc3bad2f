// The ceiling for Node: node:http answering /healthz with the same JSON as data-api, nothing else.
import http from 'node:http'

const body = JSON.stringify({ status: 'ok' })
const server = http.createServer((request, response) => {
  if (request.url === '/healthz') {
    response.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) })
    response.end(body)
  } else {
    response.writeHead(404).end()
  }
})
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  console.log(JSON.stringify({ listening: `http://127.0.0.1:${(server.address() as { port: number }).port}` }))
})
process.on('SIGTERM', () => { server.close(() => process.exit(0)) })
