// The answer of POST /register (the source of its type).
import Type, { type Static } from 'typebox'

export const Registered = Type.Object({ message: Type.Literal('User registered'), user_id: Type.Integer() })
export type Registered = Static<typeof Registered>
