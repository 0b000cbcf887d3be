export * from './key-encryption';
export * from './x509';
export * from './tpm';
export * from './device-assertion';
