export * from './tpm-structures';
export * from './tpm-attestation';
