/** google.protobuf.Timestamp as proto-loader gives it ({ seconds: "…", nanos }) to ISO 8601. */
export function isoTime(ts: unknown): string {
  const t = ts as { seconds?: string | number; nanos?: number } | null | undefined;
  if (!t || t.seconds === undefined) return '';
  return new Date(Number(t.seconds) * 1000 + Math.floor((t.nanos ?? 0) / 1e6)).toISOString();
}
