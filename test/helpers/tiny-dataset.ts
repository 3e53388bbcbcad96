// A prepared Cognate dataset of seeded synthetic documents, for trainer tests that need no tokenizer run.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { DATASET_FORMAT } from '../../activities/cognate/engine/data';
import { Rng } from '../../common/rng';

/** A prepared dataset in the forge-token-shards/v1 format: documents of seeded random tokens, each ended by EOS. */
export function writeTinyDataset(
  dir: string,
  opts: { vocabSize: number; trainDocs: number; valDocs: number; seed: number; shards?: number },
): void {
  const rng = new Rng(opts.seed);
  const eosId = 0;
  const makeSplit = (name: string, docs: number, shards: number) => {
    const perShard: number[][] = Array.from({ length: shards }, () => []);
    for (let d = 0; d < docs; d++) {
      const len = 5 + rng.int(20);
      // Each document counts up from a random start: learnable structure, so the loss really falls.
      const start = 2 + rng.int(opts.vocabSize - 2);
      const doc = Array.from({ length: len }, (_, i) => 2 + ((start + i) % (opts.vocabSize - 2)));
      perShard[d % shards].push(...doc, eosId);
    }
    return {
      shards: perShard.map((tokens, i) => {
        const file = `${name}-${String(i).padStart(5, '0')}.bin`;
        const bytes = Buffer.from(new Uint16Array(tokens).buffer);
        fs.writeFileSync(path.join(dir, file), bytes);
        return { file, tokens: tokens.length, sha256: crypto.createHash('sha256').update(bytes).digest('hex') };
      }),
      documents: docs,
      sources: { synthetic: docs },
    };
  };
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'tokenizer.json'), '{}');
  const manifest = {
    format: DATASET_FORMAT,
    tokenizer: 'tokenizer.json',
    vocabSize: opts.vocabSize,
    eosId,
    padId: 1,
    dtype: 'uint16',
    splits: { train: makeSplit('train', opts.trainDocs, opts.shards ?? 2), validation: makeSplit('validation', opts.valDocs, 1) },
    inputs: {},
    createdAt: new Date(0).toISOString(),
  };
  fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(manifest, null, 2));
}
