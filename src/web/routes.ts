// The web interface: `/` (home), `/ui/datasets` (the data sets, an upload form), `/ui/datasets/{id}`
// (one data set: its rows, filters, facets, statistics) and `/ui/lab` (the lesson's claims, run
// from the browser). One HTML shell for every page, plain ES modules from public/ that render
// with lit-html, served from node_modules as installed: no build step, no CDN, and every page
// talks to the API the way any client does (fetch, EventSource), so the API is the only backend.
//
// The pages carry a strict Content-Security-Policy (lib/page-security.ts): scripts from this
// origin only plus the shell's import map allowed by its hash, no inline styles, no eval. They are
// registered in a context of their own: the JSON routes run no hook for them.
import fs from 'node:fs/promises'
import { createRequire } from 'node:module'
import path from 'node:path'
import helmet from '@fastify/helmet'
import fastifyStatic from '@fastify/static'
import type { FastifyPluginAsync, FastifyReply } from 'fastify'
import { inlineScriptHashes, pageSecurityHeaders } from '../lib/page-security.ts'

const PUBLIC_DIR = path.join(import.meta.dirname, 'public')
const LIT_HTML_DIR = path.dirname(createRequire(import.meta.url).resolve('lit-html'))

/** The paths the shell answers; the page shown is chosen in the browser (public/app.js). */
export const PAGES = ['/', '/ui/datasets', '/ui/datasets/:dataset_id', '/ui/lab'] as const

export const webRoutes: FastifyPluginAsync = async (app) => {
  const shell = await fs.readFile(path.join(PUBLIC_DIR, 'index.html'), 'utf8')
  await app.register(helmet, pageSecurityHeaders({ scriptHashes: inlineScriptHashes(shell), inlineStyles: false }))
  // wildcard: false: one route per file found at start, so any other path is the app's own 404.
  // no-cache: a browser revalidates (ETag) and never runs a stale module beside a new one.
  const assets = { wildcard: false, cacheControl: false, setHeaders: (reply: FastifyReply) => { void reply.header('cache-control', 'no-cache') }, logLevel: 'warn' } as const
  await app.register(fastifyStatic, { ...assets, root: PUBLIC_DIR, prefix: '/ui/assets/', globIgnore: ['index.html', 'tsconfig.json'] })
  await app.register(fastifyStatic, {
    ...assets,
    root: LIT_HTML_DIR,
    prefix: '/ui/vendor/lit-html/',
    decorateReply: false,
    // The browser build only: no Node build, development build, types or source maps.
    globIgnore: ['node/**', 'development/**', '**/*.d.ts', '**/*.map', '*.md', 'LICENSE', 'package.json'],
  })
  for (const url of PAGES) {
    app.get(url, { schema: { hide: true }, logLevel: 'warn' }, async (_request, reply) => {
      return await reply.type('text/html; charset=utf-8').header('cache-control', 'no-cache').send(shell)
    })
  }
}
