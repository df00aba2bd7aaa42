# syntax=docker/dockerfile:1
# Switchyard's container image: built with the Rust toolchain, shipped on distroless (glibc, CA
# bundle, no shell, no package manager) as the non-root user 65532, the UID the k8s/ manifests run
# it as. Build: docker build -t registry.example.com/switchyard:0.1.0 .

FROM rust:1-bookworm AS build
# cmake builds pingora's zlib-ng.
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY conf ./conf
COPY crates ./crates
COPY benches ./benches
COPY examples ./examples
RUN cargo build --release --locked --bin switchyard \
 && cp target/release/switchyard /switchyard

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /switchyard /usr/local/bin/switchyard
COPY conf/examples/production.yaml /etc/switchyard/examples/production.yaml
USER 65532:65532
# 8080: the proxy (bind it to 127.0.0.1 in a sidecar); 9090: /metrics, /healthz, /readyz, /config.
EXPOSE 8080 9090
ENTRYPOINT ["/usr/local/bin/switchyard"]
CMD ["run", "--config", "/etc/switchyard/switchyard.yaml"]
