/**
 * Slow HTTP clients (slowloris and its kin) on raw TCP sockets to 127.0.0.1:
 * one that sends its request headers a byte at a time, one that sends whole
 * headers and then the body a byte at a time, and one that connects and sends
 * nothing. Each resolves when the server closes the connection, with what the
 * server answered and when; each stops by itself after `giveUpMs`.
 */
import { connect } from 'node:net';

export type SlowMode = 'headers' | 'body' | 'idle';

export interface SlowOutcome {
  mode: SlowMode;
  /** Milliseconds from connect to the server closing the connection (or giving up). */
  closedAfterMs: number;
  /** The first line the server sent, e.g. "HTTP/1.1 408 Request Timeout"; '' if none. */
  statusLine: string;
  bytesSent: number;
  /** True when the client gave up before the server closed the connection. */
  gaveUp: boolean;
}

export function slowClient(
  port: number,
  mode: SlowMode,
  {
    path = '/healthz',
    byteEveryMs = 250,
    giveUpMs = 60_000,
  }: { path?: string; byteEveryMs?: number; giveUpMs?: number } = {},
): Promise<SlowOutcome> {
  const headers =
    mode === 'body'
      ? `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 4096\r\n\r\n`
      : `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ${'a'.repeat(4000)}\r\n\r\n`;
  const body = `{"padding":"${'b'.repeat(4080)}"}`;
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let t0 = Date.now();
    let sent = 0;
    let received = '';
    let timer: NodeJS.Timeout | undefined;
    let gaveUp = false;
    const giveUp = setTimeout(() => {
      gaveUp = true;
      socket.destroy();
    }, giveUpMs);
    socket.on('connect', () => {
      t0 = Date.now();
      let text = headers;
      if (mode === 'body') {
        socket.write(headers);
        sent = headers.length;
        text = body;
      }
      let i = 0;
      if (mode !== 'idle')
        timer = setInterval(() => {
          if (i < text.length && socket.writable) {
            socket.write(text[i++]!);
            sent++;
          }
        }, byteEveryMs);
    });
    socket.on('data', (d) => {
      received += d.toString('latin1');
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearInterval(timer);
      clearTimeout(giveUp);
      resolve({
        mode,
        closedAfterMs: Date.now() - t0,
        statusLine: received.split('\r\n')[0] ?? '',
        bytesSent: sent,
        gaveUp,
      });
    });
  });
}
