// Types for tools/stack/stack.cjs (CommonJS front of stack.mjs).
export interface StackOptions {
  /** receives progress lines (default: written to stderr) */
  log?: (msg: string) => void;
  timeoutMs?: number;
}
export interface ComponentStatus {
  name: 'postgres' | 'redis' | 'kafka';
  address: string;
  up: boolean;
  startedByUp: boolean;
  pid: number | null;
}
export function up(opts?: StackOptions): Promise<void>;
export function down(opts?: StackOptions): Promise<void>;
export function status(): Promise<ComponentStatus[]>;
/** Start the broker on the same data dir; resolves once it accepts Kafka requests again. */
export function startKafka(opts?: StackOptions): Promise<void>;
/** SIGTERM (controlled shutdown) to the broker this stack started; SIGKILL after 30 s. */
export function stopKafka(opts?: StackOptions): Promise<void>;
