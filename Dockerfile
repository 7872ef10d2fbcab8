# cacheroach server and CLI. Build: `docker build -t cacheroach .`; run with
# docker-compose.quickstart.yml, or `docker run -p 127.0.0.1:13013:13013 cacheroach` (embedded
# PostgreSQL in the container's data dir). docs/operations.md "Containers" says what was and was
# not checked: no Docker engine exists where this project is built, so this file has never been built.
ARG NODE_IMAGE=node:20.20.2-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
# package.json `allowScripts` and --strict-allow-scripts need npm 11 (the version CI uses); the
# npm 10 of node 20 images ignores both and would run every dependency's install script.
RUN npm install --global --ignore-scripts --no-fund --no-audit npm@11.19.1
COPY . .
RUN npm ci --strict-allow-scripts --no-fund --no-audit
RUN npm run build
RUN npm prune --omit=dev --no-fund --no-audit

FROM ${NODE_IMAGE}
ENV NODE_ENV=production \
    CACHEROACH_BIND=0.0.0.0:13013 \
    CACHEROACH_DATA_DIR=/var/lib/cacheroach/data
WORKDIR /app
# Only what runs: production dependencies, built code, migrations. Owned by root, so the server
# cannot change its own code.
COPY --from=build /app/package.json /app/package-lock.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/proto/package.json ./proto/
COPY --from=build /app/proto/dist ./proto/dist
COPY --from=build /app/packages/core/package.json ./packages/core/
COPY --from=build /app/packages/core/dist ./packages/core/dist
COPY --from=build /app/packages/schema/package.json ./packages/schema/
COPY --from=build /app/packages/schema/dist ./packages/schema/dist
COPY --from=build /app/packages/schema/migrations ./packages/schema/migrations
COPY --from=build /app/packages/server/package.json ./packages/server/
COPY --from=build /app/packages/server/dist ./packages/server/dist
# The built web UI (served at /_/ui/); its sources and dev dependencies stay behind.
COPY --from=build /app/packages/web/package.json ./packages/web/
COPY --from=build /app/packages/web/dist/ui ./packages/web/dist/ui
COPY --from=build /app/packages/cli/package.json /app/packages/cli/oclif.manifest.json ./packages/cli/
COPY --from=build /app/packages/cli/bin ./packages/cli/bin
COPY --from=build /app/packages/cli/dist ./packages/cli/dist
# The data dir and the key dir belong to the unprivileged user; a named volume mounted on either
# starts with this ownership.
RUN mkdir -p /var/lib/cacheroach/data /var/lib/cacheroach/keys \
  && chown -R 1000:1000 /var/lib/cacheroach \
  && chmod 0700 /var/lib/cacheroach/data /var/lib/cacheroach/keys \
  && ln -s /app/packages/cli/bin/run.js /usr/local/bin/cacheroach
# The image's `node` user, by number so that runAsNonRoot checks can verify it.
USER 1000:1000
EXPOSE 13013
# Ready = the database answers (see /readyz in docs/operations.md). The port comes from
# CACHEROACH_BIND: change the port with that variable, not --bind, so this check follows it.
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "const p=(process.env.CACHEROACH_BIND||'').split(':').pop()||'13013';fetch('http://127.0.0.1:'+p+'/readyz',{signal:AbortSignal.timeout(4000)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# Exec form: SIGTERM reaches the CLI, which stops the server cleanly.
ENTRYPOINT ["node", "/app/packages/cli/bin/run.js"]
CMD ["start"]
