// GET /products and GET /products/{id}: the lesson's Motor example (`db.products.find().limit(10)`)
// on the catalog store chosen at start, PostgreSQL or MongoDB.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import Type from 'typebox'
import { Problem } from '../../lib/errors.ts'
import { abortOnDisconnect } from '../../lib/request-signal.ts'
import { problemResponses } from '../../lib/schemas.ts'
import { ID_RULES, Product, productIdSchema, productPageQuery, type CatalogStore } from './schemas.ts'

export const productRoutes: FastifyPluginAsyncTypebox<{ catalog: CatalogStore }> = async (app, { catalog }) => {
  const storeNote = `This server reads products from its ${catalog.kind === 'mongodb' ? 'MongoDB' : 'PostgreSQL'} catalog store.`

  app.get('/products', {
    schema: {
      tags: ['products'],
      summary: 'A page of products, in id order',
      description: 'Keyset pagination: follow the `Link: <…>; rel="next"` header, or pass the last `id` you saw as `after`. ' +
        `\`category\` filters by exact category. ${ID_RULES} ${storeNote} ` +
        'When the MongoDB store does not answer within `MONGODB_TIMEOUT_MS`, the answer is a 503 `catalog-unavailable` problem with `Retry-After`.',
      querystring: productPageQuery(catalog),
      response: { 200: Type.Array(Product), ...problemResponses(400, 503) },
    },
  }, async (request, reply) => {
    const { limit, after, category } = request.query
    // One row more than asked tells whether a next page exists without a count.
    const rows = await catalog.listProducts({ limit: limit + 1, after, category }, abortOnDisconnect(reply))
    const page = rows.slice(0, limit)
    if (rows.length > limit) {
      const next = new URLSearchParams({ limit: String(limit), ...(category === undefined ? {} : { category }), after: page.at(-1)!.id })
      reply.header('link', `</products?${next.toString()}>; rel="next"`)
    }
    return page
  })

  app.get('/products/:id', {
    schema: {
      tags: ['products'],
      summary: 'One product',
      description: `${ID_RULES} ${storeNote}`,
      params: Type.Object({ id: productIdSchema(catalog) }),
      response: { 200: Product, ...problemResponses(400, 404, 503) },
    },
  }, async (request, reply) => {
    const product = await catalog.findProduct(request.params.id, abortOnDisconnect(reply))
    if (product === undefined) throw new Problem('not-found', `There is no product ${request.params.id}.`)
    return product
  })
}
