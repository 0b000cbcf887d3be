export * from './tpm-wire';
export * from './tpm2-tools';
export * from './tpm-csr';
export * from './aik-ca';
