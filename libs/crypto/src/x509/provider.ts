/** @peculiar/x509 runs on Node's WebCrypto; set once for every user of this library. */
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

export { x509, webcrypto };
export type WebCryptoKey = webcrypto.CryptoKey;
