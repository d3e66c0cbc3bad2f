// Deterministic sample products: product number n with seed s has the same name, price, category,
// tags and date in either store, so the two stores can be compared item for item.
import { DAY_MS, generator, pick, SAMPLE_EPOCH } from '../../lib/sample-data.ts'

export interface SampleProduct { name: string, price: number, category: string, tags: string[], created_at: Date }

const ADJECTIVES = ['Compact', 'Sturdy', 'Quiet', 'Bright', 'Classic', 'Smart', 'Rugged', 'Slim', 'Portable', 'Deluxe', 'Eco', 'Vintage']
const MATERIALS = ['Oak', 'Steel', 'Cotton', 'Bamboo', 'Carbon', 'Ceramic', 'Leather', 'Glass', 'Wool', 'Copper']
const CATEGORIES = {
  kitchen: ['Kettle', 'Pan', 'Knife', 'Mug', 'Grinder'],
  garden: ['Trowel', 'Planter', 'Hose', 'Shears'],
  office: ['Desk', 'Lamp', 'Notebook', 'Chair', 'Stapler'],
  sports: ['Racket', 'Bottle', 'Mat', 'Helmet'],
  audio: ['Speaker', 'Headphones', 'Turntable'],
  travel: ['Backpack', 'Suitcase', 'Pillow', 'Adapter'],
} as const
const CATEGORY_NAMES = Object.keys(CATEGORIES) as Array<keyof typeof CATEGORIES>
const TAGS = ['new', 'sale', 'bestseller', 'eco', 'gift', 'limited']

export function sampleProduct (number: number, seed: number): SampleProduct {
  const random = generator((seed * 1_000_003 + number) ^ 0x9a0d)
  const category = pick(random, CATEGORY_NAMES)
  const name = `${pick(random, ADJECTIVES)} ${pick(random, MATERIALS)} ${pick(random, CATEGORIES[category])}`
  const price = Math.round((2 + random() * 498) * 100) / 100
  const tags = TAGS.filter(() => random() < 0.2)
  const created_at = new Date(SAMPLE_EPOCH - Math.floor(random() * 365 * DAY_MS))
  return { name, price, category, tags, created_at }
}
