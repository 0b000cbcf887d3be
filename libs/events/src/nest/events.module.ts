/** Nest adapter for the event bus and the outbox relay (the Kafka code itself stays plain). */
import {
  type DynamicModule,
  Inject,
  Injectable,
  type InjectionToken,
  Module,
  type ModuleMetadata,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import {
  type KafkaConfig,
  MetricsRegistry,
  pgPoolOf,
  SERVICE_CONFIG,
  SERVICE_LOGGER,
} from '@latchkey/service-kit';
import type { Logger } from 'pino';
import { kafkaGroupOptions, kafkaSecurityOptions } from '../kafka/kafka-client-config';
import { type BatchEventConsumerOptions, KafkaEventBus } from '../kafka/kafka-event-bus';
import { type OutboxDatabase, OutboxRelay } from '../outbox/outbox';
import { registerOutboxMetrics } from '../outbox/outbox-metrics';
import { pgOutboxDatabase } from '../outbox/pg-outbox-database';

export interface EventsModuleOptions {
  brokers: string[];
  clientId: string;
  /** Topics this service publishes to or consumes; created at start when missing. */
  topics: readonly string[];
  /** The Prisma client (its injection token) whose outbox_events table is relayed. */
  outboxDatabase?: InjectionToken;
  /** A consumer group to run, if this service consumes events (BatchEventConsumerOptions). */
  consumer?: InjectionToken;
  /** Modules that export the `consumer` token. */
  imports?: ModuleMetadata['imports'];
}

export const EVENTS_OPTIONS = Symbol('EVENTS_OPTIONS');
/** Provide this token with BatchEventConsumerOptions to run a consumer. */
export const EVENT_CONSUMER = Symbol('EVENT_CONSUMER');

/** Retries `task` with backoff until it succeeds or the service stops. */
async function untilDone(
  task: () => Promise<void>,
  what: string,
  logger: Logger,
  stopped: () => boolean,
): Promise<void> {
  for (let attempt = 0; !stopped(); attempt++) {
    try {
      await task();
      if (attempt) logger.info({ attempt }, `${what}: done after retries`);
      return;
    } catch (err) {
      logger.warn({ err: (err as Error).message, attempt }, `${what} failed; retrying`);
      await new Promise((r) => setTimeout(r, Math.min(250 * 2 ** Math.min(attempt, 5), 5000)));
    }
  }
}

@Injectable()
class EventsLifecycle implements OnApplicationBootstrap, OnApplicationShutdown {
  private stopped = false;
  private background?: Promise<void>;

  constructor(
    private readonly bus: KafkaEventBus,
    @Inject(EVENTS_OPTIONS) private readonly options: EventsModuleOptions,
    @Inject(SERVICE_LOGGER) private readonly logger: Logger,
    @Inject(OutboxRelay) private readonly relay: OutboxRelay | null,
    @Inject(EVENT_CONSUMER) private readonly consumer: BatchEventConsumerOptions | null,
  ) {}

  onApplicationBootstrap(): void {
    // Never block start-up on Kafka: the outbox holds events until the broker answers.
    const isStopped = () => this.stopped;
    this.background = (async () => {
      await untilDone(
        () => this.bus.ensureTopics(this.options.topics),
        'creating topics',
        this.logger,
        isStopped,
      );
      this.relay?.start();
      const consumer = this.consumer;
      if (consumer) {
        await untilDone(
          () => this.bus.startConsumer(consumer),
          'starting consumer',
          this.logger,
          isStopped,
        );
      }
    })();
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopped = true;
    await this.relay?.stop();
    await this.bus.close();
    await this.background?.catch(() => undefined);
  }
}

@Module({})
export class EventsModule {
  static forRoot(options: EventsModuleOptions): DynamicModule {
    return {
      module: EventsModule,
      global: true,
      imports: options.imports ?? [],
      providers: [
        { provide: EVENTS_OPTIONS, useValue: options },
        {
          provide: KafkaEventBus,
          // TLS, SASL and group timings come from the service's validated KAFKA_* variables
          // (kafkaConfigShape).
          useFactory: (logger: Logger, config: KafkaConfig) =>
            new KafkaEventBus({
              brokers: options.brokers,
              clientId: options.clientId,
              logger,
              ...kafkaSecurityOptions(config),
              ...kafkaGroupOptions(config),
            }),
          inject: [SERVICE_LOGGER, SERVICE_CONFIG],
        },
        options.outboxDatabase
          ? {
              provide: OutboxRelay,
              useFactory: (
                db: OutboxDatabase,
                bus: KafkaEventBus,
                logger: Logger,
                metrics: MetricsRegistry,
              ) => {
                // The client's own pool when it has one (prismaProvider): same database, no ORM.
                const pool = pgPoolOf(db);
                const relay = new OutboxRelay(pool ? pgOutboxDatabase(pool) : db, bus, { logger });
                registerOutboxMetrics(metrics.registry, relay);
                return relay;
              },
              inject: [options.outboxDatabase, KafkaEventBus, SERVICE_LOGGER, MetricsRegistry],
            }
          : { provide: OutboxRelay, useValue: null },
        options.consumer
          ? { provide: EVENT_CONSUMER, useExisting: options.consumer }
          : { provide: EVENT_CONSUMER, useValue: null },
        EventsLifecycle,
      ],
      exports: [KafkaEventBus, OutboxRelay],
    };
  }
}
