# Cognate pretraining worker image (GPU): `docker build -f docker/worker-gpu.Dockerfile .` from the repository root.
# Polls the cognate-pretraining task queue with one training slot per visible GPU. Run it with the NVIDIA
# container toolkit (compose: `--profile gpu`; docker run: `--gpus all`).
FROM node:20-bookworm-slim AS node

FROM nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04

# Node.js from the official image (same binary as the CPU image), fonts for the PNG curves, CA certificates.
COPY --from=node /usr/local/bin/node /usr/local/bin/node
COPY --from=node /usr/local/lib/node_modules /usr/local/lib/node_modules
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
  && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
  && apt-get update \
  && apt-get install -y --no-install-recommends fonts-dejavu-core ca-certificates python3 \
  && rm -rf /var/lib/apt/lists/* \
  && useradd --create-home --uid 1000 forge

WORKDIR /app
ENV FORGE_SKIP_TEMPORAL_INSTALL=1 \
    FORGE_DATA_DIR=/data \
    NODE_ENV=production \
    FORGE_TF_GPU=1 \
    FORGE_TF_BACKEND=tensorflow

COPY package.json package-lock.json ./
COPY scripts scripts
COPY common/temporal-cli.ts common/temporal-cli.ts
RUN npm ci --omit=dev && npm cache clean --force
# Native TensorFlow for CUDA 12 (the GPU route of the native-backend install step). FORGE_TF_BACKEND=tensorflow
# above makes the worker fail at its first training step, loudly, if this did not produce a GPU backend,
# instead of training on WebAssembly on a GPU machine.
RUN FORGE_TF_GPU=1 node scripts/ensure-native-tf.js

COPY tsconfig.json ./
COPY common common
COPY workflows workflows
COPY activities activities
COPY workers workers
COPY client client
COPY cli cli
COPY fixtures fixtures
COPY bin bin

RUN mkdir -p /data && chown forge:forge /data
USER forge
VOLUME ["/data"]
EXPOSE 9464 9465
CMD ["npm", "run", "--silent", "worker:cognate"]
