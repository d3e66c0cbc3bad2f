// Every problem `type` is a relative URI such as /problems/not-found; this makes each one
// dereferenceable, as RFC 9457 recommends, with a description of what it means.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import Type, { type Static } from 'typebox'
import { Problem, PROBLEM_TYPES, type ProblemCode, problemTypeUri } from '../../lib/errors.ts'
import { problemResponses } from '../../lib/schemas.ts'

const ProblemType = Type.Object({ type: Type.String(), title: Type.String(), status: Type.Integer(), description: Type.String() })

export const problemRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/problems', {
    schema: { tags: ['meta'], summary: 'The problem types this API answers with', response: { 200: Type.Array(ProblemType) } },
  }, async () => Object.keys(PROBLEM_TYPES).map((code) => describe(code as ProblemCode)))

  app.get('/problems/:code', {
    schema: {
      tags: ['meta'],
      summary: 'What one problem type means',
      params: Type.Object({ code: Type.String({ maxLength: 64 }) }),
      response: { 200: ProblemType, ...problemResponses(400, 404) },
    },
  }, async (request) => {
    const { code } = request.params
    if (!Object.hasOwn(PROBLEM_TYPES, code)) throw new Problem('not-found', `There is no problem type "${code}".`)
    return describe(code as ProblemCode)
  })
}

function describe (code: ProblemCode): Static<typeof ProblemType> {
  return { type: problemTypeUri(code), ...PROBLEM_TYPES[code] }
}
