# syntax=docker/dockerfile:1
# meshguard container image: compiled JS and production dependencies on Node 24 (the current LTS,
# which CI tests beside Node 20), non-root.
#   docker build -t meshguard:dev .

ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
# Only the server and CLI: the benchmarks (also in tsconfig.build.json) are not shipped.
RUN printf '{"extends": "./tsconfig.build.json", "include": ["src"]}' > tsconfig.image.json \
 && npx tsc -p tsconfig.image.json \
 && npm prune --omit=dev --no-audit --no-fund

FROM ${NODE_IMAGE}
ENV NODE_ENV=production
WORKDIR /app
# package.json marks the package root (src/paths.ts) and "type": "module".
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist/src ./dist/src
# The configuration, its schema, and the policies' READMEs (the help of SARIF reports' rules).
COPY policies ./policies
# A fixed numeric user, so runAsNonRoot can verify it; no writable paths are needed when the
# certificate is mounted (the chart mounts the Secret at /tls and an emptyDir at /tmp).
USER 10001:10001
EXPOSE 8443 9090
ENTRYPOINT ["node", "/app/dist/src/cli.js"]
CMD ["serve"]
