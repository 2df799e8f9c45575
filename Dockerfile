# syntax=docker/dockerfile:1
#
# Switchboard in two stages: a Rust build, then a slim Debian runtime. The
# default target is the worker's image; `--target load` adds the load tool
# (switchboard-load: demo and synthetic traffic), which the worker's image
# does not carry.
#
# The Rust version follows Cargo.lock, not Cargo.toml's rust-version: some
# locked dependencies (uuid 1.29) need Rust 1.89 or newer. 1.95 is the
# toolchain the project is built and tested with.
FROM rust:1.95-bookworm AS build

# librdkafka is compiled from the sources bundled in rdkafka-sys with its own
# ./configure and make (no cmake; python3 is optional, configure only skips a
# linker script without it); the vendored OpenSSL needs perl; zlib is found
# through pkg-config. The rust image already has most of this; listing
# it keeps the build honest if the base image shrinks.
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential perl pkg-config zlib1g-dev \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
# Only what the binaries are built from: the manifests and lock, the code
# (the worker's in src/, the other crates under crates/), and the
# two directories compiled into it (config/default.toml, migrations/).
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY crates ./crates
COPY config ./config
COPY migrations ./migrations

# The caches keep downloaded crates and compiled dependencies between builds;
# the binary is copied out because the target directory is a cache mount.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --workspace --bins \
 && install -m 0755 target/release/switchboard target/release/switchboard-load /usr/local/bin/

FROM debian:bookworm-slim AS runtime

# ca-certificates: librdkafka (with its statically linked OpenSSL) probes the
# system CA bundle when a broker uses TLS.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin switchboard

COPY --from=build /usr/local/bin/switchboard /usr/local/bin/switchboard

USER switchboard

# The load tool's image: the worker's plus switchboard-load.
FROM runtime AS load
COPY --from=build /usr/local/bin/switchboard-load /usr/local/bin/switchboard-load
ENTRYPOINT ["switchboard-load"]
CMD ["sample"]

# The worker's image (the default target, last).
FROM runtime AS worker
ENTRYPOINT ["switchboard"]
CMD ["run"]
