/** Why a CSR, key or certificate was refused (stable codes the services map to reasons). */
export type X509ErrorCode =
  | 'MALFORMED_CSR'
  | 'CSR_SIGNATURE_INVALID'
  | 'KEY_NOT_ALLOWED'
  | 'MALFORMED_PUBLIC_KEY'
  | 'MALFORMED_CERTIFICATE';

export class X509Error extends Error {
  constructor(
    readonly code: X509ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'X509Error';
  }
}
