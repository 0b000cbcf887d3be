export * from './device-assertion-verifier';
