// Test certificates made with the system's openssl: a throwaway CA per test directory and leaf
// certificates it signs. For tests only (exported through `@oiafed/transport/testing`).
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** Paths of a PEM certificate and its key. */
export interface TestCertificate {
  cert: string;
  key: string;
}

/** A CA in `dir` (`<caName>.pem`, `<caName>.key`) that issues leaf certificates into the same directory. */
export interface TestPki {
  /** The CA's certificate path (what a peer trusts). */
  ca: string;
  caKey: string;
  /** A certificate for `cn` with subjectAltName `san` (default `IP:127.0.0.1,DNS:localhost`), as `<name>.pem` / `<name>.key`. */
  issue(name: string, options?: { cn?: string; san?: string }): TestCertificate;
}

/** Makes a self-signed EC P-256 CA valid for a day, named `caName` (default `ca`). */
export function createTestPki(dir: string, caName = 'ca'): TestPki {
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  ssl('req', '-x509', ...EC_KEY, '-keyout', `${caName}.key`, '-out', `${caName}.pem`, '-days', '1', '-subj', `/CN=${caName}`);
  return {
    ca: join(dir, `${caName}.pem`),
    caKey: join(dir, `${caName}.key`),
    issue(name, options = {}) {
      writeFileSync(join(dir, `${name}.ext`), `subjectAltName=${options.san ?? 'IP:127.0.0.1,DNS:localhost'}\n`);
      ssl('req', ...EC_KEY, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${options.cn ?? name}`);
      ssl('x509', '-req', '-in', `${name}.csr`, '-CA', `${caName}.pem`, '-CAkey', `${caName}.key`, '-CAcreateserial', '-out', `${name}.pem`, '-days', '1', '-extfile', `${name}.ext`);
      return { cert: join(dir, `${name}.pem`), key: join(dir, `${name}.key`) };
    },
  };
}
