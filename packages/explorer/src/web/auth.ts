/**
 * The explorer's token check for the UI and query API. A request passes with
 * `Authorization: Bearer <EXPLORER_TOKEN>`, or with a session cookie: opening any page with
 * `?token=<EXPLORER_TOKEN>` trades the token for a random session id, kept in this process's
 * memory (so sessions end when the explorer restarts) and sent back as an HttpOnly,
 * SameSite=Strict cookie. The token itself is never a cookie: cookies are not scoped by port,
 * so every other service on the host would receive it.
 */
import { randomBytes } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { tokenMatches } from '../otlp/receiver.js';

export const SESSION_COOKIE = 'loomtrace_session';
const SESSION_TTL_MS = 12 * 3_600_000;
/** Beyond this many live sessions the oldest is forgotten (its holder opens the ?token= link again). */
const MAX_SESSIONS = 1_000;

/** The raw value of cookie `name`, never decoded (a session id is base64url); undefined when absent. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return undefined;
}

export interface ExplorerAuth {
  /** onRequest step: undefined to go on, or the reply it sent (a redirect or a 401). */
  check(req: FastifyRequest, reply: FastifyReply): FastifyReply | undefined;
}

export function createAuth(token: string): ExplorerAuth {
  const sessions = new Map<string, number>(); // id → expiry (ms); insertion order = age
  const newSession = () => {
    const now = Date.now();
    for (const [id, until] of sessions) {
      if (until > now && sessions.size < MAX_SESSIONS) break;
      sessions.delete(id);
    }
    const id = randomBytes(32).toString('base64url');
    sessions.set(id, now + SESSION_TTL_MS);
    return id;
  };
  const validSession = (id: string | undefined) => {
    if (!id) return false;
    const until = sessions.get(id);
    if (until === undefined) return false;
    if (until > Date.now()) return true;
    sessions.delete(id);
    return false;
  };
  return {
    check(req, reply) {
      const url = new URL(req.url, 'http://x');
      const given = url.searchParams.get('token');
      if (given !== null && req.method === 'GET' && !url.pathname.startsWith('/api/') && tokenMatches(token, `Bearer ${given}`)) {
        // Trade the token in the URL for a session the pages' fetches carry.
        url.searchParams.delete('token');
        reply.header('set-cookie', `${SESSION_COOKIE}=${newSession()}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${SESSION_TTL_MS / 1000}`);
        return reply.redirect(url.pathname + (url.search || ''), 303);
      }
      if (tokenMatches(token, req.headers.authorization) || validSession(cookieValue(req.headers.cookie, SESSION_COOKIE))) return undefined;
      return reply
        .code(401)
        .header('www-authenticate', 'Bearer')
        .send({ statusCode: 401, code: 'UNAUTHORIZED', error: 'Unauthorized', message: 'a token is required: open the URL with ?token=… or send Authorization: Bearer …' });
    },
  };
}
