/** How a secret reads where it is shown: in `GET /api/v1/config`, and in log lines. */
export const REDACTED = '[redacted]'

/** The `user:password@` of a URL, anywhere in a string. */
const USERINFO = /(\/\/)[^/@\s]+@/g

/** A URL (or any text holding one) with its user and password replaced, for logs and views. */
export function redactUrl(url: string): string {
  return url.replace(USERINFO, `$1${REDACTED}@`)
}
