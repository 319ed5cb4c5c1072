#!/bin/sh
# Installs what cep needs to build, run the demo and run the tests on
# Debian 12 (bookworm). Idempotent: installs only what is missing.
set -eu

# clang-format-14: scripts/format.sh and checksrc.sh's layout check
PKGS="build-essential cmake pkg-config clang libclang-rt-14-dev clang-format-14
      libnng-dev libprotobuf-c-dev protobuf-c-compiler libmbedtls-dev
      libcurl4-openssl-dev libcriterion-dev libyaml-dev libjansson-dev
      libsystemd-dev python3 nftables iproute2 procps
      libnftables-dev libnftnl-dev libmnl-dev libnetfilter-queue-dev iputils-ping
      openssl util-linux prometheus
      python3-protobuf python3-cryptography protobuf-compiler tinyproxy
      debootstrap systemd-container rpm
      umoci skopeo ca-certificates binutils chromium"
# libgrpc++-dev, libprotobuf-dev, protobuf-compiler-grpc: test only, for
# tests/bench/grpc (bench_grpc, cep's bus beside gRPC); the product never
# links them, and the build skips bench_grpc without them.
PKGS="$PKGS libgrpc++-dev libprotobuf-dev protobuf-compiler-grpc"
# prometheus: the `prometheus` probe's end-to-end test starts its own server
# (own config, data dir and port); the Debian package's service on :9090 is
# neither used nor touched.
# debootstrap, systemd-container (systemd-nspawn), rpm: the appliance test
# (tests/appliance/) boots the packages in Debian 12 roots.
# umoci, ca-certificates, binutils: the runner's OCI image
# (scripts/runner-image.sh), which the Kubernetes tests run; skopeo reads
# it back as a registry client would (tests/packaging/runner_image_test.py).
# chromium: the HTML report's test renders it headless (docs/report.md).

# The Kubernetes tests run the real kubectl against the test server. CI
# machines carry one (1.32); elsewhere Debian's kubernetes-client is enough.
command -v kubectl >/dev/null 2>&1 || PKGS="$PKGS kubernetes-client"

# shellcheck source=scripts/apt_install.sh
. "$(dirname "$0")/apt_install.sh"
# shellcheck disable=SC2086
cep_apt_install $PKGS
