import Type, { type Static } from 'typebox'
import { DateTime, PositiveId } from '../../lib/schemas.ts'

export const UserId = PositiveId({ description: 'A user id (positive integer)' })
/** A user id query parameter that defaults to 1, so the lesson's parameterless URLs answer. */
export const UserIdDefault1 = PositiveId({ default: 1, description: 'A user id; default 1, so that the lesson\'s bare URL (`/dashboard`) answers' })

export const User = Type.Object({
  user_id: Type.Integer(),
  name: Type.String(),
  email: Type.String({ format: 'email' }),
  created_at: DateTime,
}, { $id: 'User' })

export const Order = Type.Object({
  order_id: Type.Integer(),
  amount: Type.Number(),
  status: Type.String(),
  created_at: DateTime,
}, { $id: 'Order' })

export const OrderStats = Type.Object({
  count: Type.Integer(),
  total: Type.Number(),
  average: Type.Union([Type.Number(), Type.Null()], { description: 'null when there are no orders' }),
}, { $id: 'OrderStats' })

export type UserRow = Static<typeof User>
export type OrderRow = Static<typeof Order>
export type OrderStatsRow = Static<typeof OrderStats>
