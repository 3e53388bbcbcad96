// Connection and storage settings from the environment, shared by workers, clients and the CLI. Variables
// that concern one part are read where they are used (FORGE_TF_BACKEND in common/backend.ts, HF_ENDPOINT in
// the Cognate hub client, worker concurrency in workers/run.ts); README "Configuration" lists them all.
import path from 'node:path';

export interface ForgeEnv {
  /** host:port of the Temporal frontend. Default localhost:7233 (the embedded dev server). */
  temporalAddress: string;
  /** Temporal namespace. Default "default". */
  temporalNamespace: string;
  /** Root of datasets, checkpoints and artifacts. Must be shared storage when workers run on several machines. */
  dataDir: string;
  /** TLS for a remote cluster: enabled when any TLS variable or an API key is set. */
  tls?: { serverName?: string; serverRootCACertPath?: string; clientCertPath?: string; clientKeyPath?: string };
  /** API key for Temporal Cloud or a cluster with API-key auth. */
  apiKey?: string;
}

function opt(name: string): string | undefined {
  const v = process.env[name];
  return v === undefined || v === '' ? undefined : v;
}

export function loadEnv(): ForgeEnv {
  const tlsVars = {
    serverName: opt('TEMPORAL_TLS_SERVER_NAME'),
    serverRootCACertPath: opt('TEMPORAL_TLS_CA'),
    clientCertPath: opt('TEMPORAL_TLS_CERT'),
    clientKeyPath: opt('TEMPORAL_TLS_KEY'),
  };
  if (!!tlsVars.clientCertPath !== !!tlsVars.clientKeyPath) {
    throw new Error('TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY must be set together (client certificate and its key)');
  }
  const apiKey = opt('TEMPORAL_API_KEY');
  const wantTls = opt('TEMPORAL_TLS') === 'true' || apiKey !== undefined || Object.values(tlsVars).some((v) => v !== undefined);
  return {
    temporalAddress: opt('TEMPORAL_ADDRESS') ?? 'localhost:7233',
    temporalNamespace: opt('TEMPORAL_NAMESPACE') ?? 'default',
    dataDir: path.resolve(opt('FORGE_DATA_DIR') ?? path.join(process.cwd(), '.forge', 'data')),
    tls: wantTls ? tlsVars : undefined,
    apiKey,
  };
}
