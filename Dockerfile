# syntax=docker/dockerfile:1
# Production image of the authprobe operator. One image, three roles: `operator` (the default),
# `probe` (inside the probe pods the operator starts) and `check`.
#
#   docker build -t docker.io/authprobe/authprobe-operator:0.1.0 .
#
# The local test image (test/cluster/image.sh, `npm run cluster:image`) is built from the same
# inputs without a Docker engine: `npm run build`'s dist/, the production node_modules of
# `npm ci --omit=dev`, package.json, and the Node 24 binary (from the `node` npm package) with its
# shared libraries, laid out as /app and run as user 65532 with the same entrypoint.

# ---- build: compile TypeScript, then drop the dev dependencies --------------------------------
FROM node:24-bookworm-slim AS build
WORKDIR /src
# Dependencies first, so this layer is reused until package*.json change.
COPY package.json package-lock.json ./
# --ignore-scripts: no dependency needs an install script to build (the `node` devDependency would
# only download a second Node binary).
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

# ---- runtime: Node 24 only, no shell, no package manager, non-root ---------------------------
FROM gcr.io/distroless/nodejs24-debian12:nonroot
LABEL org.opencontainers.image.title="authprobe-operator" \
      org.opencontainers.image.description="Proves service-account tokens still authenticate, and heals stale token secrets." \
      org.opencontainers.image.licenses="Apache-2.0"
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build --chown=65532:65532 /src/package.json ./package.json
COPY --from=build --chown=65532:65532 /src/node_modules ./node_modules
COPY --from=build --chown=65532:65532 /src/dist ./dist
# distroless :nonroot already runs as 65532; stated so that runAsNonRoot can verify a numeric user.
USER 65532:65532
# /healthz, /readyz and /metrics
EXPOSE 8080
ENTRYPOINT ["/nodejs/bin/node", "/app/dist/cli/main.js"]
CMD ["operator"]
