import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A PEM key and certificate, made for one test run. */
export interface SelfSignedCertificate {
  key: Buffer;
  cert: Buffer;
}

/**
 * A throwaway P-256 certificate for `name` (a DNS name, or an IP address), made with the openssl CLI, valid
 * for two days. Tests use it both as the server's certificate and as the client's only trusted CA.
 */
export function selfSignedCertificate(name: string): SelfSignedCertificate {
  const dir = mkdtempSync(join(tmpdir(), 'cert-'));
  const san = /^[\d.]+$|:/.test(name) ? `IP:${name}` : `DNS:${name}`;
  try {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
        '-days',
        '2',
        '-subj',
        `/CN=${name}`,
        '-addext',
        `subjectAltName=${san}`,
      ],
      { stdio: 'ignore' },
    );
    return { key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
