// @ts-check
// The API's answers as the pages read them: the documented shapes of /openapi.json (the parts
// used here), for the type checker only.

/** @typedef {'text' | 'integer' | 'numeric' | 'boolean' | 'date' | 'timestamp'} ColumnType */
/** @typedef {{ detail: string, line?: number, item?: number }} DataError */
/**
 * @typedef {object} Dataset
 * @property {number} id
 * @property {string} name
 * @property {string | null} description
 * @property {'importing' | 'ready' | 'failed'} status
 * @property {number} rows
 * @property {number} bytes
 * @property {string | null} format
 * @property {DataError | null} error
 * @property {string[] | null} key
 * @property {string} created_at
 * @property {string} updated_at
 */
/** @typedef {{ name: string, type: ColumnType, nullable: boolean }} Field */
/** @typedef {{ from: number | string, to: number | string, count: number }} Bin */
/**
 * @typedef {object} ColumnStats
 * @property {ColumnType} type
 * @property {number} count
 * @property {number} nulls
 * @property {number} distinct
 * @property {boolean} distinct_estimated
 * @property {number | string | null} [min]
 * @property {number | string | null} [max]
 * @property {number | null} [mean]
 * @property {number | null} [stddev]
 * @property {number} [true_count]
 * @property {number} [false_count]
 * @property {number | null} [min_length]
 * @property {number | null} [max_length]
 * @property {Array<{ value: string, count: number }>} [top]
 * @property {{ bins: Bin[] }} [histogram]
 */
/** @typedef {{ dataset: Dataset, schema: { fields: Field[] }, stats: { count: number, computed_at?: string | null, columns: Record<string, ColumnStats> }, write?: DatasetWrite }} DatasetDetail */
/** @typedef {{ value: unknown, to?: unknown, count: number }} FacetValue */
/** @typedef {{ by: string, values: FacetValue[], other: number, nulls: number } | { timed_out: true }} Facet */
/** @typedef {{ rows: Array<Record<string, unknown>>, next_cursor: string | null, total?: number, total_is_estimate?: boolean, facets?: Record<string, Facet> }} RowsPage */
/** @typedef {{ id: number, kind: string, status: string, rows_read: number | null, inserted: number | null, error: DataError | null }} DatasetWrite */
/** @typedef {{ dataset: Pick<Dataset, 'id' | 'status' | 'rows' | 'error' | 'updated_at'>, write: DatasetWrite | null }} DatasetState */

export {}
