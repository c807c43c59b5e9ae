# crossprov in a container: built in a Rust image, run from a distroless one (glibc, CA roots,
# no shell, no package manager) as a non-root user, with its data under a volume.
#
#   docker build -t crossprov .
#   docker run -p 8080:8080 -v crossprov-data:/var/lib/crossprov crossprov
#
# docs/operations.md has the production settings (config/production.toml), secrets and stopping.

FROM rust:1.88-bookworm AS build
WORKDIR /src
# Dependencies first, so a source change does not rebuild them.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src/bin/crossprov-bench \
 && echo 'fn main() {}' > src/main.rs \
 && echo 'fn main() {}' > src/bin/crossprov-bench/main.rs \
 && touch src/lib.rs \
 && cargo build --release --locked --bin crossprov \
 && rm -rf src
COPY . .
# The real sources are older than the stand-ins' build: make cargo see them as changed.
RUN touch src/main.rs src/lib.rs \
 && cargo build --release --locked --bin crossprov \
 && strip target/release/crossprov \
 && mkdir -p /out/var/lib/crossprov

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/crossprov /usr/local/bin/crossprov
# The volume's mount point, owned by the image's non-root user (65532), so a fresh named
# volume starts out writable by it.
COPY --from=build --chown=65532:65532 /out/var/lib/crossprov /var/lib/crossprov
ENV CROSSPROV_DATA_DIR=/var/lib/crossprov \
    CROSSPROV_SERVER__LISTEN=0.0.0.0:8080
VOLUME ["/var/lib/crossprov"]
USER 65532:65532
EXPOSE 8080
# No curl in the image: the binary asks /readyz itself (exit 0 on 2xx). It answers 503 from
# the moment the service is told to stop.
HEALTHCHECK --interval=10s --timeout=6s --start-period=30s --retries=3 \
  CMD ["/usr/local/bin/crossprov", "probe", "--timeout", "5", "http://127.0.0.1:8080/readyz"]
# SIGTERM (docker stop) stops gracefully; give it server.shutdown_drain_seconds +
# server.shutdown_timeout_seconds + mail.timeout_seconds + 5 s (docker stop --time 75).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/crossprov"]
CMD ["serve"]
