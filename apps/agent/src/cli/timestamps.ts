/**
 * A time as the services send it to ISO 8601: google.protobuf.Timestamp as
 * proto-loader gives it ({ seconds: "…", nanos }) over gRPC, or ISO 8601 text
 * over the HTTPS JSON APIs.
 */
export function isoTime(ts: unknown): string {
  if (typeof ts === 'string') {
    const ms = Date.parse(ts);
    return Number.isNaN(ms) ? '' : new Date(ms).toISOString();
  }
  const t = ts as { seconds?: string | number; nanos?: number } | null | undefined;
  if (!t || t.seconds === undefined) return '';
  return new Date(Number(t.seconds) * 1000 + Math.floor((t.nanos ?? 0) / 1e6)).toISOString();
}
