/** One bootstrap for every service: validated config, gRPC + HTTP, health, graceful shutdown. */
import type { Server as HttpServer } from 'node:http';
import { ReflectionService } from '@grpc/reflection';
import type { Server as GrpcServer } from '@grpc/grpc-js';
import { type DynamicModule, type INestApplication, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { type GrpcOptions, Transport } from '@nestjs/microservices';
import type { PackageDefinition } from '@grpc/proto-loader';
import type { z } from 'zod';
import {
  type BaseConfig,
  baseConfigShape,
  ConfigError,
  loadConfig,
  redactConfig,
} from '../config/config';
import { GrpcHealthReporter } from '../health/grpc-health';
import { HealthRegistry } from '../health/health-registry';
import { grpcRequestMetrics, httpRequestMetrics, MetricsRegistry } from '../metrics/metrics';
import { createLogger, PinoNestLogger } from '../logging/logger';
import { startTelemetry } from '../telemetry';
import { tolerateMalformedMessages } from './malformed-messages';
import { ServiceKitModule } from './service-kit.module';
import { refuseNonUtf8Bodies } from './utf8-bodies';

type BaseShape = typeof baseConfigShape;

export interface ServiceDefinition<S extends BaseShape> {
  /** Short name: registration, provisioning, auth, audit. */
  name: string;
  configShape: S;
  grpc: {
    /** Fully qualified proto package, e.g. latchkey.registration.v1. */
    package: string;
    /** Proto file(s) relative to protoRoot (several when services share one package). */
    protoPath: string | string[];
    protoRoot: string;
    /** Fully qualified service names reported by grpc.health.v1. */
    services: string[];
    loaderOptions: object;
  };
  module: (config: z.infer<z.ZodObject<S>>) => DynamicModule;
}

export interface RunningService {
  app: INestApplication;
  close(): Promise<void>;
}

/**
 * Cuts off clients that send a request slowly (slowloris: headers or body a
 * byte at a time) with 408 and a closed connection, so they cannot hold
 * connections for Node's defaults (60 s for headers, 300 s for a request,
 * checked only every 30 s). Set before listen: Node starts its check then.
 */
export function limitSlowClients(
  server: HttpServer,
  limits: Pick<BaseConfig, 'HTTP_HEADERS_TIMEOUT_MS' | 'HTTP_REQUEST_TIMEOUT_MS'>,
): void {
  server.headersTimeout = limits.HTTP_HEADERS_TIMEOUT_MS;
  server.requestTimeout = limits.HTTP_REQUEST_TIMEOUT_MS;
  (server as HttpServer & { connectionsCheckingInterval: number }).connectionsCheckingInterval =
    1_000;
}

export async function bootstrapService<S extends BaseShape>(
  def: ServiceDefinition<S>,
  env: NodeJS.ProcessEnv = process.env,
): Promise<RunningService> {
  let config: z.infer<z.ZodObject<S>>;
  let base: BaseConfig;
  try {
    config = loadConfig(def.configShape, env);
    base = config as unknown as BaseConfig;
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`latchkey-${def.name}: ${err.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    throw err;
  }
  const telemetry = startTelemetry(def.name, env);
  const logger = createLogger(`latchkey-${def.name}`, base.LOG_LEVEL);
  // What the service runs with, secrets redacted: the first thing to check after a deployment.
  logger.info({ config: redactConfig(config as Record<string, unknown>) }, 'configuration');

  @Module({
    imports: [ServiceKitModule.forRoot({ service: def.name, config, logger }), def.module(config)],
  })
  class RootModule {}

  const app = await NestFactory.create(RootModule, {
    logger: new PinoNestLogger(logger),
    abortOnError: false,
    // The parsed body's bytes (req.rawBody): an empty body parses to {}, and jsonObjectBody
    // must tell that from a JSON object even when no Content-Length says so (chunked).
    rawBody: true,
  });
  const registry = app.get(HealthRegistry);
  const metrics = app.get(MetricsRegistry);
  // Before the routes (registered when the app initialises): every request is counted.
  app.use(httpRequestMetrics(metrics));
  // Before the body parser (registered when the app initialises too).
  app.use(refuseNonUtf8Bodies());
  const grpcHealth = new GrpcHealthReporter(registry, def.grpc.services);

  app.connectMicroservice<GrpcOptions>(
    {
      transport: Transport.GRPC,
      options: {
        package: def.grpc.package,
        protoPath: def.grpc.protoPath,
        url: `${base.HOST}:${base.GRPC_PORT}`,
        // Explicit, not grpc-js's default by chance: larger messages get RESOURCE_EXHAUSTED.
        maxReceiveMessageLength: base.GRPC_MAX_RECEIVE_MESSAGE_BYTES,
        // grpc-js takes server interceptors with its channel options (`new Server(options)`).
        channelOptions: { interceptors: [grpcRequestMetrics(metrics)] },
        loader: { ...def.grpc.loaderOptions, includeDirs: [def.grpc.protoRoot] },
        onLoadPackageDefinition: (
          pkg: PackageDefinition,
          server: Pick<GrpcServer, 'addService'>,
        ) => {
          tolerateMalformedMessages(pkg);
          new ReflectionService(pkg).addToServer(server);
          grpcHealth.implementation.addToServer(server);
        },
      },
    },
    { inheritAppConfig: true },
  );

  await app.startAllMicroservices();
  limitSlowClients(app.getHttpServer() as HttpServer, base);
  await app.listen(base.HTTP_PORT, base.HOST);
  grpcHealth.start();
  logger.info(
    {
      http: `${base.HOST}:${base.HTTP_PORT}`,
      grpc: `${base.HOST}:${base.GRPC_PORT}`,
      startup_ms: Math.round(performance.now()),
    },
    `latchkey-${def.name} started`,
  );

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      registry.markShuttingDown();
      grpcHealth.stop();
      const timer = setTimeout(() => {
        logger.error('graceful shutdown timed out; exiting');
        process.exit(1);
      }, base.SHUTDOWN_TIMEOUT_MS);
      timer.unref();
      await app.close();
      await telemetry.shutdown().catch(() => undefined);
      logger.info(`latchkey-${def.name} stopped`);
    })());

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      void close().then(
        () => process.exit(0),
        (err: unknown) => {
          logger.error({ err }, 'error during shutdown');
          process.exit(1);
        },
      );
    });
  }
  return { app, close };
}
