// The web interface: `/` (home), `/ui/datasets` (the data sets, an upload form), `/ui/datasets/{id}`
// (one data set: its rows, filters, facets, statistics) and `/ui/lab` (the lesson's claims, run
// from the browser, beside the last `npm run bench`'s: `/ui/bench/latest.json`). One HTML shell
// for every page, plain ES modules from public/ that render with lit-html, served from
// node_modules as installed: no build step, no CDN, and every page talks to the API the way any
// client does (fetch, EventSource), so the API is the only backend.
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
import { Problem } from '../lib/errors.ts'
import { inlineScriptHashes, pageSecurityHeaders } from '../lib/page-security.ts'

const PUBLIC_DIR = path.join(import.meta.dirname, 'public')
const LIT_HTML_DIR = path.dirname(createRequire(import.meta.url).resolve('lit-html'))
/** Where `npm run bench` (bench/suite.ts) writes its runs, in a checkout; absent in an install without bench/. */
const BENCH_RESULTS_DIR = path.join(import.meta.dirname, '..', '..', 'bench', 'results')
/** A run of the suite: `<startedAt>.json` with `:` as `-` (bench/suite.ts); the other benches' files carry a prefix. */
const SUITE_RUN = /^\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}Z\.json$/

export interface WebRoutesOptions {
  /** The directory of the bench suite's results (default: the checkout's bench/results). */
  benchResultsDir?: string
}

/** The paths the shell answers; the page shown is chosen in the browser (public/app.js). */
// A data set's page only for an id that can be one: any other path under it is the app's 404.
export const PAGES = ['/', '/ui/datasets', '/ui/datasets/:dataset_id(^\\d{1,16}$)', '/ui/lab'] as const

export const webRoutes: FastifyPluginAsync<WebRoutesOptions> = async (app, options) => {
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
  await app.register(benchResultsRoute, { dir: options.benchResultsDir ?? BENCH_RESULTS_DIR })
}

/**
 * `GET /ui/bench/latest.json`: the newest run of the bench suite, as bench/suite.ts wrote it (the
 * shape of bench/results.ts), for the lab page's charts; 404 when there is none. The directory is
 * read at each request (a run finished since start shows at once) and only for a file name of the
 * suite's pattern: nothing of the request names a path.
 */
export const benchResultsRoute: FastifyPluginAsync<{ dir: string }> = async (app, { dir }) => {
  app.get('/ui/bench/latest.json', { schema: { hide: true }, logLevel: 'warn' }, async (_request, reply) => {
    const names = await fs.readdir(dir).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT' || error.code === 'ENOTDIR') return []
      throw error
    })
    // The names sort as the times they carry.
    const newest = names.filter((name) => SUITE_RUN.test(name)).sort().at(-1)
    if (newest === undefined) throw new Problem('not-found', 'No benchmark results yet: run `npm run bench` (a quick run: `npm run bench -- --quick`).')
    const text = await fs.readFile(path.join(dir, newest), 'utf8')
    JSON.parse(text) // a run cut short mid-write is an error here, not a page that fails to parse it
    return await reply.type('application/json; charset=utf-8').header('cache-control', 'no-cache').send(text)
  })
}
