export * from './key-encryption';
export * from './x509';
