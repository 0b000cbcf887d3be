export * from './chain-verification';
