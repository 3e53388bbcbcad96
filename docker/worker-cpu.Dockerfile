# Agent Forge worker image (CPU): `docker build -f docker/worker-cpu.Dockerfile .` from the repository root.
# Polls the agent-forge task queue; Agent Forge's small networks train on the CPU (libtensorflow when the
# @tensorflow/tfjs-node optional dependency installs, else WebAssembly: the worker logs which).
FROM node:20-bookworm-slim

# Fonts for the PNG curves (resvg draws text with system fonts); CA certificates for TLS to Temporal Cloud.
RUN apt-get update \
  && apt-get install -y --no-install-recommends fonts-dejavu-core ca-certificates \
  && rm -rf /var/lib/apt/lists/*

WORKDIR /app
# Workers connect to a cluster: no Temporal CLI / dev server is needed inside the image.
ENV FORGE_SKIP_TEMPORAL_INSTALL=1 \
    FORGE_DATA_DIR=/data \
    NODE_ENV=production

# Dependencies first (cached while only sources change); postinstall runs scripts/ensure-temporal.js.
COPY package.json package-lock.json ./
# The postinstall steps (Temporal CLI lookup, native TensorFlow build) run during npm ci.
COPY scripts scripts
COPY common/temporal-cli.ts common/temporal-cli.ts
RUN npm ci --omit=dev && npm cache clean --force

COPY tsconfig.json ./
COPY common common
COPY workflows workflows
COPY activities activities
COPY workers workers
COPY client client
COPY cli cli
COPY fixtures fixtures
COPY bin bin

RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
# FORGE_METRICS_PORT (training + Temporal runtime metrics) and FORGE_TEMPORAL_METRICS_PORT (runtime only).
EXPOSE 9464 9465
CMD ["npm", "run", "--silent", "worker:agent"]
