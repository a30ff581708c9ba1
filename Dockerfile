# Cairn in a container: `docker build -t cairn .` then
# `docker run -p 8080:8080 -v cairn-data:/data cairn` (README.md, "Run in Docker").

# ---- build: the release binary, with the registry and target folder cached between builds ----
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p cairn-cli \
    && cp target/release/cairn /usr/local/bin/cairn

# ---- runtime: the binary alone on a slim Debian, as an unprivileged user ----
FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --user-group --home-dir /data --shell /usr/sbin/nologin cairn \
    && mkdir -p /data \
    && chown cairn:cairn /data
COPY --from=build /usr/local/bin/cairn /usr/local/bin/cairn
# Every key of the configuration can be set this way (README.md, "Configuration").
ENV CAIRN_DATA_DIR=/data \
    CAIRN_SERVER__HOST=0.0.0.0 \
    CAIRN_SERVER__PORT=8080
USER cairn
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8080
# Liveness through the binary itself (the image has no curl): exit 0 only on HTTP 200.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD cairn health --url "http://127.0.0.1:${CAIRN_SERVER__PORT}/healthz"
ENTRYPOINT ["cairn"]
CMD ["serve"]
