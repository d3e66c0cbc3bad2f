// The SSRF guard: a URL that comes from a user (a data set import, say) may only reach the public
// internet. Only http and https; an address that is loopback, private, link-local (which holds the
// cloud metadata service 169.254.169.254), unique-local, multicast, reserved or otherwise special
// is refused unless the operator allowlisted it (SSRF_ALLOWLIST).
//
// The decision is made on the address the socket actually connects to: the guard's `lookup`
// replaces DNS resolution inside net.connect/tls.connect, so a hostname that resolves to a public
// address for a pre-check and to 10.0.0.1 a moment later (DNS rebinding) is still refused.
// `check()` runs the same decision ahead of time, to answer 400 before accepting work.
import { lookup as dnsLookup, type LookupAddress } from 'node:dns'
import { isIP, type LookupFunction } from 'node:net'
import ipaddr from 'ipaddr.js'
import { Agent, buildConnector } from 'undici'
import { Problem } from '../lib/errors.ts'

export type Resolver = (hostname: string) => Promise<LookupAddress[]>

export interface SsrfGuardOptions {
  /** Entries that are reachable even though special: CIDR ranges, addresses or exact hostnames. */
  allow?: readonly string[]
  /** Name resolution; tests inject one so that no test depends on (or reaches) real DNS. */
  resolve?: Resolver
}

export interface SsrfGuard {
  /** Parses and vets a user-supplied URL, resolving its host; throws a 400 `url-not-allowed` problem. */
  check: (url: string) => Promise<URL>
  /** The verdict on one resolved address for `hostname`: undefined when allowed, else the reason. */
  refusal: (hostname: string, address: string) => string | undefined
  /** A drop-in for dns.lookup that fails when any resolved address is refused. */
  lookup: LookupFunction
  /** An undici Agent whose every connection goes through the guard. */
  agent: (options?: Agent.Options) => Agent
}

export class UrlNotAllowedError extends Problem {
  constructor (url: string, reason: string) {
    super('url-not-allowed', `The URL ${url} is not allowed: ${reason}.`, { extra: { reason } })
  }
}

const systemResolver: Resolver = async (hostname) => await new Promise((resolve, reject) => {
  dnsLookup(hostname, { all: true, verbatim: true }, (error, addresses) => {
    if (error === null) resolve(addresses)
    else reject(error)
  })
})

/** Hostnames in URLs carry brackets around IPv6 literals; addresses do not. */
function bare (hostname: string): string {
  return hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname
}

export function createSsrfGuard ({ allow = [], resolve = systemResolver }: SsrfGuardOptions = {}): SsrfGuard {
  const allowedHosts = new Set<string>()
  const allowedRanges: Array<[ipaddr.IPv4 | ipaddr.IPv6, number]> = []
  for (const entry of allow.map((value) => value.trim().toLowerCase()).filter((value) => value !== '')) {
    if (ipaddr.isValidCIDR(entry)) allowedRanges.push(ipaddr.parseCIDR(entry))
    else if (ipaddr.isValid(bare(entry))) {
      const address = ipaddr.process(bare(entry))
      allowedRanges.push([address, address.kind() === 'ipv4' ? 32 : 128])
    } else allowedHosts.add(entry)
  }

  const refusal = (hostname: string, address: string): string | undefined => {
    if (allowedHosts.has(bare(hostname).toLowerCase())) return undefined
    if (!ipaddr.isValid(address)) return `${address} is not an IP address`
    // process() turns IPv4-mapped IPv6 (::ffff:10.0.0.1) into the IPv4 address it really is.
    const parsed = ipaddr.process(address)
    if (allowedRanges.some(([range, bits]) => parsed.kind() === range.kind() && parsed.match(range, bits))) return undefined
    const range = parsed.range()
    return range === 'unicast' ? undefined : `${address} is a ${range} address`
  }

  const resolveChecked = async (hostname: string): Promise<LookupAddress[]> => {
    const host = bare(hostname)
    const family = isIP(host)
    const addresses = family === 0 ? await resolve(host) : [{ address: host, family }]
    if (addresses.length === 0) throw new Error(`${host} has no address`)
    // All or nothing: a name with one public and one private address is refused, otherwise the
    // connection could pick the private one.
    for (const { address } of addresses) {
      const reason = refusal(hostname, address)
      if (reason !== undefined) throw Object.assign(new Error(`${host}: ${reason}`), { code: 'ESSRF', reason })
    }
    return addresses
  }

  const lookup: LookupFunction = (hostname, options, callback) => {
    resolveChecked(hostname).then((addresses) => {
      if (options.all === true) callback(null, addresses)
      else callback(null, addresses[0]!.address, addresses[0]!.family)
    }, (error: NodeJS.ErrnoException) => { callback(error, '', 0) })
  }

  return {
    refusal,
    lookup,

    async check (input) {
      let url: URL
      try {
        url = new URL(input)
      } catch {
        throw new UrlNotAllowedError(input, 'it is not an absolute URL')
      }
      if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UrlNotAllowedError(input, `only http and https are allowed, not ${url.protocol.slice(0, -1)}`)
      if (url.username !== '' || url.password !== '') throw new UrlNotAllowedError(input, 'credentials in URLs are not accepted')
      try {
        await resolveChecked(url.hostname)
      } catch (error) {
        const reason = (error as { reason?: string }).reason ?? `${url.hostname} could not be resolved`
        throw new UrlNotAllowedError(input, reason)
      }
      return url
    },

    agent (options = {}) {
      const connect = buildConnector({ lookup, ...(typeof options.connectTimeout === 'number' && { timeout: options.connectTimeout }) })
      // net.connect skips `lookup` for IP literals, so the connector vets literals itself.
      const guarded: buildConnector.connector = (target, callback) => {
        const host = bare(target.hostname)
        const reason = isIP(host) === 0 ? undefined : refusal(host, host)
        if (reason === undefined) connect(target, callback)
        else callback(Object.assign(new Error(`${host}: ${reason}`), { code: 'ESSRF', reason }), null)
      }
      return new Agent({ ...options, connect: guarded })
    },
  }
}
