# The message queue service as one compiled binary (`bun run build` -> dist/mq) on Debian slim.
#   docker build -t message-queue-service .
#   docker run --rm -p 3010:3010 -e DATABASE_URL=… -e REDIS_URL=… -e JWT_SECRET=… \
#     -e MQ_MASTER_KEY=… message-queue-service            # role `all`; or `api`, `worker`, `migrate`

# --- build: install the locked dependencies and compile ------------------------------------
# The Bun of bun.lock (package.json's @types/bun and .ci/run's BUN_VERSION).
FROM oven/bun:1.4.5 AS build
WORKDIR /src
COPY package.json bun.lock bunfig.toml tsconfig.json ./
# patches/: fixes to dependencies that bun install applies (package.json patchedDependencies).
COPY patches ./patches
RUN bun install --frozen-lockfile --production
COPY src ./src
COPY drizzle ./drizzle
RUN bun run build

# --- run: the binary (the migrations are inside it), nothing else ---------------------------
FROM debian:bookworm-slim
RUN groupadd --system --gid 10001 mq \
  && useradd --system --uid 10001 --gid mq --home-dir /app --no-create-home --shell /usr/sbin/nologin mq
WORKDIR /app
COPY --from=build /src/dist/mq /app/mq
ENV NODE_ENV=production \
    PORT=3010 \
    DATA_DIR=/tmp/mq-data
USER mq
EXPOSE 3010
# No curl in the image: BUN_BE_BUN=1 makes the compiled binary act as the bun CLI, so it can
# run this one-line fetch. /health answers 200 (healthy or degraded) or 503 (unhealthy).
HEALTHCHECK --interval=30s --timeout=10s --start-period=40s --retries=3 \
  CMD ["env", "BUN_BE_BUN=1", "/app/mq", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3010) + '/health', { signal: AbortSignal.timeout(5000) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["/app/mq"]
CMD ["all"]
