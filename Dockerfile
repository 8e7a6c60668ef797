# syntax=docker/dockerfile:1
# Builds the gateway; the image runs `switchboard run` with the config in /app/config.
#
# The Rust image is pinned to the workspace's `rust-version` (the oldest toolchain the locked
# dependency tree builds with; teloxide's uuid needs 1.89). Compiled dependencies live in
# BuildKit cache mounts, so a change to our code rebuilds our crates only.
FROM rust:1.89-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin switchboard \
    && cp target/release/switchboard /usr/local/bin/switchboard

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin switchboard
WORKDIR /app
COPY --from=build /usr/local/bin/switchboard /usr/local/bin/switchboard
COPY config /app/config
# The archive's directory, owned by the gateway's user: a named volume mounted over it starts
# with that owner (docker-compose.yml shares one between replicas).
RUN mkdir -p /app/archive && chown switchboard /app/archive
# The knowledge base is a volume in docker-compose.yml, so editing it needs no new image;
# learned entries live in Redis.
USER switchboard
EXPOSE 8080 9090
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
    CMD curl -fsS -H "Authorization: Bearer ${SWITCHBOARD_ADMIN_TOKEN}" http://127.0.0.1:9090/readyz >/dev/null || exit 1
ENTRYPOINT ["switchboard"]
CMD ["run", "--config", "/app/config/docker.toml"]
