/**
 * The embedded Postgres superuser's password: random, made once per data directory, kept in
 * `<dataDir>.password` (a sibling of the cluster folder, e.g. `.loomtrace/pg.password`), mode
 * 0600, owned by the user that runs loomtrace. Not inside the cluster folder: that folder
 * belongs to the `postgres` OS user when we run as root, and a file we read there could be
 * swapped under us by that user.
 *
 * The server only ever sees a SCRAM-SHA-256 verifier (at initdb, and in the ALTER ROLE that
 * upgrades an older data directory), so the password itself is in no statement, no server log
 * and no temporary file; clients prove it with SCRAM.
 */
import { closeSync, constants, fstatSync, fchmodSync, openSync, readFileSync, writeSync, fsyncSync } from 'node:fs';
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import path from 'node:path';

/** The password every data directory had before it was random; refused once upgraded. */
export const LEGACY_PASSWORD = 'loomtrace';

export class EmbeddedPasswordError extends Error {}

export function passwordFileFor(pgDataDir: string): string {
  return `${path.resolve(pgDataDir)}.password`;
}

/**
 * The password stored in `file`, or undefined when there is none. Refuses a file that is not a
 * regular file of ours (a symlink, a FIFO, someone else's); tightens a looser mode to 0600.
 */
export function readPasswordFile(file: string): string | undefined {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'ELOOP') throw new EmbeddedPasswordError(`${file} is a symbolic link; refusing to read the Postgres password from it`);
    if (code === 'EACCES') throw new EmbeddedPasswordError(`cannot read ${file}: run as the user who ran \`npm start\`, or set DATABASE_URL`);
    throw err;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new EmbeddedPasswordError(`${file} is not a regular file`);
    const uid = process.getuid?.();
    if (uid !== undefined && st.uid !== uid) throw new EmbeddedPasswordError(`${file} belongs to uid ${st.uid}, not to you (uid ${uid}); refusing to use it`);
    if ((st.mode & 0o077) !== 0) fchmodSync(fd, 0o600);
    const password = readFileSync(fd, 'utf8').trim();
    if (!/^[\x21-\x7e]{16,}$/.test(password)) throw new EmbeddedPasswordError(`${file} does not hold a password (16 or more visible characters)`);
    return password;
  } finally {
    closeSync(fd);
  }
}

/** The password in `file`, made (crypto.randomBytes, 0600, exclusive create) when there is none. */
export function ensurePasswordFile(file: string): { password: string; created: boolean } {
  const existing = readPasswordFile(file);
  if (existing) return { password: existing, created: false };
  const password = randomBytes(24).toString('hex');
  let fd: number;
  try {
    // O_EXCL: never through a symlink or over a file someone else just made.
    fd = openSync(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      const raced = readPasswordFile(file);
      if (raced) return { password: raced, created: false };
    }
    throw err;
  }
  try {
    writeSync(fd, `${password}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return { password, created: true };
}

/**
 * The SCRAM-SHA-256 verifier Postgres stores for `password` (RFC 5802/7677, Postgres's
 * `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`). Postgres stores a verifier
 * given as a password as it is, so the password never reaches the server in clear.
 * `password` is ASCII, where SASLprep changes nothing.
 */
export function scramVerifier(password: string, iterations = 4096, salt = randomBytes(16)): string {
  const salted = pbkdf2Sync(password, salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}
