// Connections to Temporal for clients and workers, configured only by the environment (common/env.ts).
import fs from 'node:fs';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import type { TLSConfig } from '@temporalio/common/lib/internal-non-workflow';
import { loadEnv, type ForgeEnv } from './env';

function tlsConfig(env: ForgeEnv): TLSConfig | undefined {
  if (!env.tls) return undefined;
  const read = (file: string | undefined, what: string) => {
    if (!file) return undefined;
    try {
      return fs.readFileSync(file);
    } catch (err) {
      throw new Error(`cannot read ${what} ${file}: ${(err as Error).message}`);
    }
  };
  const crt = read(env.tls.clientCertPath, 'TEMPORAL_TLS_CERT');
  const key = read(env.tls.clientKeyPath, 'TEMPORAL_TLS_KEY');
  return {
    serverNameOverride: env.tls.serverName,
    serverRootCACertificate: read(env.tls.serverRootCACertPath, 'TEMPORAL_TLS_CA'),
    clientCertPair: crt && key ? { crt, key } : undefined,
  };
}

export async function connectClient(env: ForgeEnv = loadEnv()): Promise<Client> {
  const connection = await Connection.connect({
    address: env.temporalAddress,
    tls: tlsConfig(env),
    apiKey: env.apiKey,
    connectTimeout: '10s',
  });
  return new Client({ connection, namespace: env.temporalNamespace });
}

export async function connectWorker(env: ForgeEnv = loadEnv()): Promise<NativeConnection> {
  return NativeConnection.connect({ address: env.temporalAddress, tls: tlsConfig(env), apiKey: env.apiKey });
}
