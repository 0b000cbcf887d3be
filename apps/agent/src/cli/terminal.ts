/**
 * Where the agent asks for things: a TTY (secrets are not echoed) or, for
 * scripts, one line of stdin per question in the order they are asked.
 * Prompts go to stderr so stdout stays the command's result.
 */
import { createInterface, type Interface } from 'node:readline';

export class Terminal {
  private rl?: Interface;
  private readonly queue: string[] = [];
  private readonly waiters: ((line: string | undefined) => void)[] = [];
  private ended = false;

  constructor(
    private readonly input: NodeJS.ReadStream = process.stdin,
    private readonly prompts: NodeJS.WriteStream = process.stderr,
  ) {}

  get interactive(): boolean {
    return Boolean(this.input.isTTY);
  }

  /** An answer that may be shown (a username). */
  async ask(question: string): Promise<string> {
    if (this.interactive) this.prompts.write(question);
    return this.next(question);
  }

  /** A secret (password, TOTP code, PIN): never echoed, never logged. */
  async secret(question: string): Promise<string> {
    if (!this.interactive) return this.next(question);
    this.prompts.write(question);
    const input = this.input;
    return new Promise((resolve, reject) => {
      let value = '';
      input.setRawMode(true);
      input.resume();
      input.setEncoding('utf8');
      const done = (err?: Error) => {
        input.setRawMode(false);
        input.pause();
        input.off('data', onData);
        this.prompts.write('\n');
        if (err) reject(err);
        else resolve(value);
      };
      const onData = (chunk: string) => {
        for (const ch of chunk) {
          if (ch === '\r' || ch === '\n') return done();
          if (ch === '\u0003') return done(new Error('cancelled'));
          if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1);
          else value += ch;
        }
      };
      input.on('data', onData);
    });
  }

  private next(question: string): Promise<string> {
    if (!this.rl) {
      this.rl = createInterface({ input: this.input, crlfDelay: Infinity, terminal: false });
      this.rl.on('line', (line) => {
        const w = this.waiters.shift();
        if (w) w(line);
        else this.queue.push(line);
      });
      this.rl.on('close', () => {
        this.ended = true;
        for (const w of this.waiters.splice(0)) w(undefined);
      });
    }
    const queued = this.queue.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    if (this.ended) return Promise.reject(new Error(`no input for: ${question.trim()}`));
    return new Promise((resolve, reject) =>
      this.waiters.push((line) =>
        line === undefined ? reject(new Error(`no input for: ${question.trim()}`)) : resolve(line),
      ),
    );
  }

  close(): void {
    this.rl?.close();
  }
}
