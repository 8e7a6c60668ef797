# Builds the gateway; the image runs `switchboard run` with the config in /app/config.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --bin switchboard

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /src/target/release/switchboard /usr/local/bin/switchboard
COPY config /app/config
EXPOSE 8080
ENTRYPOINT ["switchboard"]
CMD ["run", "--config", "/app/config/docker.toml"]
