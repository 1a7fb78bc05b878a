# The canary image: worker (default command), CLI and local stack, compiled. Used by docker-compose.yml.
# UNTESTED HERE: the machine this was written on has no Docker engine.
# Debian (glibc), not Alpine: the Temporal worker's native core bridge ships prebuilt for glibc.

FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY workflows workflows
COPY activities activities
COPY connection connection
COPY worker worker
COPY client client
# Only the local stack of demo/ is built (tsconfig.build.json); the test harness, the scripts and the rest of the
# demo are dev tools (npm run build:dev, dist-dev/) and stay out of the image.
COPY demo demo
# tsc, then the prebuilt workflow bundle (dist/workflow-bundle.js) so the worker starts without webpack.
RUN npm run build

FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist dist
USER node
CMD ["node", "dist/worker/main.js"]
