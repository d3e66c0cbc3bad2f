// The one error of an upload's content: a 400 `invalid-data` problem naming where (the line of a
// CSV or NDJSON file, the item of a JSON array) and what is wrong. An import job records the same
// detail and place on the data set it marks failed.
import { Problem } from '../../../lib/errors.ts'

export interface DataLocation { line?: number, item?: number }

export class InvalidDataError extends Problem {
  readonly location: DataLocation
  constructor (detail: string, location: DataLocation = {}) {
    const where = location.line !== undefined ? `line ${location.line}: ` : location.item !== undefined ? `item ${location.item}: ` : ''
    super('invalid-data', `${where}${detail}`, { extra: { ...location } })
    this.location = location
  }
}
