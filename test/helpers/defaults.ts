// Settings every test app and test server starts with, unless the test gives its own.

/**
 * Shedding on event-loop delay measures the machine as much as the app: on a busy CI machine it
 * answered ordinary tests 503. Off unless a test asks for it (protection.test.ts, faults.test.ts).
 */
export const TEST_DEFAULTS = { OVERLOAD_EVENT_LOOP_DELAY_MS: '0' }
