// Work that must not run on the event loop, executed in piscina worker threads. Each export is a
// task, called by name (`pool.run(input, { name: 'countPrimes' })`).

/** Blocks this thread for `ms`, like time.sleep in a FastAPI `def` route: it holds a thread, not the loop. */
export function blockingSleep ({ ms }: { ms: number }): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)
}

/** CPU-bound work: the number of primes below n (sieve of Eratosthenes over odd numbers). */
export function countPrimes ({ n }: { n: number }): number {
  if (n <= 2) return 0
  // Index i stands for the odd number 2i + 1; index 0 (the number 1) is not prime.
  const size = Math.floor((n - 1) / 2)
  const composite = new Uint8Array(size + 1)
  let count = 1 // the prime 2
  for (let i = 1; i <= size; i++) {
    const value = 2 * i + 1
    if (value >= n) break
    if (composite[i] === 1) continue
    count++
    for (let multiple = value * value; multiple < n; multiple += 2 * value) composite[(multiple - 1) / 2] = 1
  }
  return count
}
