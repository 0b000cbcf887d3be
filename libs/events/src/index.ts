export * from './catalogue/topics';
export * from './catalogue/catalogue';
export * from './catalogue/domain-event';
export * from './cloudevents/codec';
export * from './kafka/kafka-event-bus';
export * from './kafka/tracing';
export * from './outbox/outbox';
export * from './nest/events.module';
