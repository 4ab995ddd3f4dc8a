# One image for the API, the worker and the admin CLI:
#   docker run IMAGE npm run start:api | npm run start:worker | npm run cli -- <command>
#   (or node dist/apps/cli/src/main.js <command>)

# --- build: full install, compile, then drop dev dependencies
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# A local package the lock file links to (node_modules/msgpackr-extract -> packages/…): it must be there for
# npm ci to link it, and in the runtime image for the link to resolve.
COPY packages ./packages
RUN npm ci --no-audit --no-fund --loglevel=warn
COPY tsconfig.json tsconfig.build.json nest-cli.json ./
COPY apps ./apps
COPY libs ./libs
RUN npm run build && npm prune --omit=dev --no-audit --no-fund --loglevel=warn

# --- runtime: production dependencies and compiled code only, as the unprivileged node user
FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production \
    PORT=3000 \
    HOST=0.0.0.0
WORKDIR /app
COPY --from=build --chown=node:node /app/package.json ./package.json
COPY --from=build --chown=node:node /app/packages ./packages
COPY --from=build --chown=node:node /app/node_modules ./node_modules
COPY --from=build --chown=node:node /app/dist ./dist
# `npm run cli` runs scripts/build-if-needed.mjs first (a no-op here: no sources), and .npmrc keeps npm's banner
# off stdout, so `npm run cli -- api-keys create` prints one JSON line in the container as well.
COPY --chown=node:node scripts ./scripts
COPY --chown=node:node .npmrc ./.npmrc
USER node
EXPOSE 3000
# One check for both processes: the API answers /health/live; the worker has no port, and touches its heartbeat
# file every 10 s while Postgres and Redis answer.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD node -e "const f=process.env.WORKER_HEARTBEAT_FILE||'/tmp/webhook-secrets-worker.alive';const beat=()=>{try{return Date.now()-require('fs').statSync(f).mtimeMs<45000}catch{return false}};fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/health/live').then(r=>process.exit(r.ok?0:1),()=>process.exit(beat()?0:1))"
# V8 heap tuning keeps the API under 200 MB resident without costing throughput: its live heap is about 40 MB,
# and by default V8 lets garbage grow to several times that before a full collection (the heap may grow by 100%
# between collections instead). Semi-spaces of 16 MB, set explicitly because V8 sizes its default from the
# memory it sees: with 8 MB, objects of requests still in flight are promoted more often, which cost about 8% more
# CPU per create. package.json start:api uses the same flags.
CMD ["node", "--heap-growing-percent=100", "--max-semi-space-size=16", "dist/apps/api/src/main.js"]
