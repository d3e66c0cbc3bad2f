// Which methods a path answers to, for a 405 with `Allow` instead of a 404 when a client uses the
// wrong method on a path that exists. A second router (find-my-way, the one Fastify uses) holds
// every route's method and pattern; it is asked only on the not-found path, never per request.
import FindMyWay from 'find-my-way'

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const

export interface MethodIndex {
  add: (methods: string | string[], url: string) => void
  /** The methods `path` has a route for, in a fixed order; empty when it has none. */
  allowed: (path: string) => string[]
}

export function createMethodIndex (): MethodIndex {
  const router = FindMyWay()
  return {
    add (methods, url) {
      for (const method of [methods].flat()) {
        if (router.hasRoute(method as FindMyWay.HTTPMethod, url)) continue
        router.on(method as FindMyWay.HTTPMethod, url, () => {})
      }
    },
    allowed: (path) => METHODS.filter((method) => router.find(method, path) !== null),
  }
}
