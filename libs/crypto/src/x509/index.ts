export * from './x509-error';
export * from './key-policy';
export * from './device-csr';
export * from './device-ca';
export { x509 } from './provider';
export * from './device-keys';
