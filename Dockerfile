# Production image of aerobook-server. Used by docker-compose.yml.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p aerobook-server

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /var/lib/aerobook aerobook && mkdir -p /var/lib/aerobook && chown aerobook /var/lib/aerobook
COPY --from=build /src/target/release/aerobook-server /usr/local/bin/aerobook-server
USER aerobook
ENV AEROBOOK_LISTEN_ADDR=0.0.0.0:50051 AEROBOOK_DATA_DIR=/var/lib/aerobook AEROBOOK_LOG_FORMAT=json
EXPOSE 50051
ENTRYPOINT ["aerobook-server"]
