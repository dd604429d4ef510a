/**
 * Telling "the database went away" from "the statement failed". No dependencies: the outbox's
 * error classifier, the API and the explorer all use it.
 */

/** Postgres codes that mean the connection or the server went away, not the statement failed. */
const UNAVAILABLE_CODES = new Set([
  '08000', '08001', '08003', '08004', '08006', '08007', // connection exception
  '57P01', '57P02', '57P03', // admin shutdown, crash shutdown, cannot connect now
  '53300', // too many connections
  'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH',
]);
/** node-postgres's own errors for a lost connection carry no code; they are matched by message. */
const UNAVAILABLE_MESSAGE = /^(Connection terminated|Client has encountered a connection error|Client was closed and is not queryable|timeout exceeded when trying to connect)/;

/**
 * True when `err` says the database could not be reached or dropped the connection (as opposed
 * to rejecting the statement): the operation may succeed on a fresh connection later.
 */
export function isConnectionError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && UNAVAILABLE_CODES.has(code)) return true;
  return code === undefined && UNAVAILABLE_MESSAGE.test(err.message);
}
