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
COPY controller controller
# Only the local stack of demo/ is built (tsconfig.build.json); the test harness, the scripts and the rest of the
# demo are dev tools (npm run build:dev, dist-dev/) and stay out of the image.
COPY demo demo
# tsc, then the prebuilt workflow bundle (dist/workflow-bundle.js) so the worker starts without webpack.
RUN npm run build

FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: nothing runs at install (the prepack build is for `npm pack`, dist/ comes from the build stage).
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist dist
# Non-root, and read-only root filesystem friendly: the code belongs to root and cannot be changed by the worker;
# the worker runs the prebuilt workflow bundle and writes nothing but (at most) temporary files under /tmp, which
# deploy/worker.yaml and the chart mount as an emptyDir (readOnlyRootFilesystem: true). The numeric id of the
# image's `node` user, so the kubelet can check runAsNonRoot.
USER 1000:1000
ENV TMPDIR=/tmp
# /metrics, when CANARY_METRICS_PORT is set (deploy/worker.yaml and the chart set 9464).
EXPOSE 9464
CMD ["node", "dist/worker/main.js"]
