// The demo data set of an embedded database's first start, so that GET /datasets/1 and its rows,
// statistics and export answer at once: deterministic weather observations, imported through the
// same path as any upload.
import type { TransactionSql } from 'postgres'
import { chunks, DAY_MS, generator, pick, SAMPLE_EPOCH } from '../../lib/sample-data.ts'
import type { DatasetService } from './service.ts'

const STATIONS = ['Oslo Blindern', 'Bergen Florida', 'Tromsø', 'Trondheim Voll', 'Stavanger Sola', 'Bodø', 'Kristiansand', 'Lillehammer']
const ROWS = 2_000

function observation (index: number): string {
  const random = generator(0xda7a + index)
  const station = pick(random, STATIONS)
  const day = new Date(SAMPLE_EPOCH + Math.floor(index / STATIONS.length) * DAY_MS).toISOString().slice(0, 10)
  const temperature = (-12 + random() * 30).toFixed(1)
  const rain = random() < 0.1 ? '' : (random() < 0.6 ? 0 : random() * 25).toFixed(1)
  return `${index + 1},${station},${day},${temperature},${rain},${random() < 0.3}\n`
}

/** The demo data set, imported inside the caller's transaction (the seeder's: db/seed-once.ts). */
export async function importDemoDataset (tx: TransactionSql, datasets: DatasetService): Promise<void> {
  const csv = (function * () {
    yield Buffer.from('id,station,observed_on,temperature_c,rain_mm,windy\n')
    for (const text of chunks(ROWS, observation)) yield Buffer.from(text)
  })()
  const dataset = { name: 'weather', description: 'Demo data: daily weather observations at eight Norwegian stations (generated).' }
  await datasets.importSample(tx, dataset, toAsync(csv))
}

async function * toAsync<T> (items: Iterable<T>): AsyncGenerator<T> {
  yield * items
}
