export * from './environment';
export * from './grpc-client';
export * from './eventually';
export * from './otlp-collector';
export * from './device-fixtures';
export * from './kafka-broker';
export * from './scratch-database';
