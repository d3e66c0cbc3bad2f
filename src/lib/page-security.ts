// The browser security headers of the service's HTML pages (/docs and the web interface), via
// @fastify/helmet: a Content-Security-Policy under which a page loads and reaches nothing beyond
// this origin (so it works offline, and an injected script has nowhere to send what it reads),
// plus helmet's other defaults: X-Content-Type-Options nosniff, Referrer-Policy no-referrer,
// Cross-Origin-Opener-Policy and -Resource-Policy same-origin, Origin-Agent-Cluster… The JSON
// routes carry none of it: each page registers these in a context of its own.
import { createHash } from 'node:crypto'
import type { FastifyHelmetOptions } from '@fastify/helmet'

export interface PagePolicy {
  /** Base64 SHA-256 of each inline <script> the page may run (inlineScriptHashes): no 'unsafe-inline'. */
  scriptHashes: string[]
  /** Allow <style> elements and style attributes made at run time (a page whose library injects them; they cannot be hashed ahead). */
  inlineStyles: boolean
}

export function pageSecurityHeaders ({ scriptHashes, inlineStyles }: PagePolicy): FastifyHelmetOptions {
  return {
    contentSecurityPolicy: {
      useDefaults: false, // exactly these directives, not helmet's defaults merged in
      directives: {
        defaultSrc: ["'self'"],
        // No 'unsafe-eval' and no 'unsafe-inline': scripts come from this origin, or are the page's
        // own inline ones, allowed one by one by their hash.
        scriptSrc: ["'self'", ...scriptHashes.map((hash) => `'sha256-${hash}'`)],
        styleSrc: inlineStyles ? ["'self'", "'unsafe-inline'"] : ["'self'"],
        // Icons drawn as data: SVGs in CSS.
        imgSrc: ["'self'", 'data:'],
        // fetch, EventSource: to this API only, no proxy.
        connectSrc: ["'self'"],
        // System fonts: none is fetched.
        fontSrc: ["'none'"],
        objectSrc: ["'none'"],
        baseUri: ["'none'"],
        // Pages send their requests with fetch, never by submitting a form to a URL.
        formAction: ["'none'"],
        frameAncestors: ["'none'"],
      },
    },
    frameguard: { action: 'deny' }, // X-Frame-Options, for browsers older than frame-ancestors
    // HSTS is for whoever terminates TLS to set for the whole host, not for pages served over HTTP.
    strictTransportSecurity: false,
  }
}

/** Base64 SHA-256 of each inline <script> (one without src) of `html`, as CSP 'sha256-…' sources want them. */
export function inlineScriptHashes (html: string): string[] {
  return [...html.matchAll(/<script\b(?![^>]*\bsrc=)[^>]*>([\s\S]*?)<\/script>/gi)]
    .map(([, body]) => createHash('sha256').update(body!).digest('base64'))
}
