// A page in headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core) on a served
// app, watched for what a browser test must never see: a request leaving the app's origin (each
// is refused and recorded, so a test never leaves the machine even if a page tries), a console
// error or uncaught exception, a Content-Security-Policy violation. Also: axe-core's accessibility
// check, and screenshots kept in test-results/screenshots/ (.ci/run lists them).
import { existsSync, readFileSync } from 'node:fs'
import fs from 'node:fs/promises'
import { createRequire } from 'node:module'
import path from 'node:path'
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core'
import { PROJECT_ROOT } from '../../tools/processes.ts'
import { skipUnless } from './requirements.ts'

export const CHROMIUM = '/usr/bin/chromium'
/** For describe(): skipped without Chromium, except in CI (requirements.ts fails then). */
export const skipWithoutChromium = skipUnless(existsSync(CHROMIUM), `${CHROMIUM} not found: run tools/install-chromium.sh to run the browser tests`)
export const SCREENSHOTS_DIR = path.join(PROJECT_ROOT, 'test-results', 'screenshots')

export interface Violation { directive: string, blocked: string, source: string, line: number }

export interface WatchedBrowser {
  browser: Browser
  context: BrowserContext
  page: Page
  /** Every URL the page asked for, this origin's included. */
  requested: string[]
  /** Requests to anywhere but the origin (refused). */
  offOrigin: () => string[]
  consoleErrors: string[]
  violations: Violation[]
  close: () => Promise<void>
}

export interface WatchOptions {
  viewport?: { width: number, height: number }
  /** A console error the page is allowed (the browser logs each 4xx a page fetches, even one it expects). */
  allowConsoleError?: (text: string, url: string) => boolean
}

export async function openWatchedBrowser (origin: string, options: WatchOptions = {}): Promise<WatchedBrowser> {
  const browser = await chromium.launch({ executablePath: CHROMIUM })
  try {
    const context = await browser.newContext({ viewport: options.viewport ?? { width: 1280, height: 900 }, acceptDownloads: true })
    const requested: string[] = []
    const consoleErrors: string[] = []
    const violations: Violation[] = []
    await context.route(() => true, async (route) => {
      const url = route.request().url()
      requested.push(url)
      if (new URL(url).origin === origin) await route.continue()
      else await route.abort('blockedbyclient')
    })
    const page = await context.newPage()
    page.setDefaultTimeout(10_000)
    page.on('console', (message) => {
      if (message.type() !== 'error' || options.allowConsoleError?.(message.text(), message.location().url) === true) return
      consoleErrors.push(`${message.text()} (${message.location().url})`)
    })
    page.on('pageerror', (error) => { consoleErrors.push(`uncaught: ${error.message}`) })
    page.on('websocket', (socket) => { requested.push(socket.url()) })
    await page.exposeFunction('reportCspViolation', (violation: Violation) => { violations.push(violation) })
    // A string, not a function: it runs in the page, whose DOM types this project does not load.
    await page.addInitScript({
      content: `document.addEventListener('securitypolicyviolation', (e) => {
        globalThis.reportCspViolation({ directive: e.effectiveDirective, blocked: e.blockedURI, source: e.sourceFile, line: e.lineNumber })
      })`,
    })
    const offOrigin = (): string[] => requested.filter((url) => !url.startsWith('data:') && new URL(url).origin !== origin)
    return { browser, context, page, requested, offOrigin, consoleErrors, violations, close: async () => { await browser.close() } }
  } catch (error) {
    await browser.close()
    throw error
  }
}

const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8')

/** A violation, with where it is: the CSS selectors of its first few elements. */
export interface AxeViolation { id: string, impact: string | null, help: string, targets: unknown[] }

/** axe-core's violations of the page as it is now (its source evaluated in the page: no script tag, so the page's CSP is untouched). */
export async function axeViolations (page: Page): Promise<AxeViolation[]> {
  return await page.evaluate(`(async () => {
    ${AXE_SOURCE}
    const result = await axe.run(document, { resultTypes: ['violations'] })
    return result.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, targets: v.nodes.slice(0, 3).map((node) => node.target) }))
  })()`)
}

/** The serious and critical ones: what a browser test fails on. */
export function seriousViolations (violations: AxeViolation[]): AxeViolation[] {
  return violations.filter((violation) => violation.impact === 'serious' || violation.impact === 'critical')
}

/** A full-page screenshot as test-results/screenshots/<name>.png. */
export async function screenshot (page: Page, name: string): Promise<void> {
  await fs.mkdir(SCREENSHOTS_DIR, { recursive: true })
  await page.screenshot({ path: path.join(SCREENSHOTS_DIR, `${name}.png`), fullPage: true })
}
