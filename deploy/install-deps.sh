#!/usr/bin/env bash
# Installs every Debian package that Runnel's build, tests and tools need.
# Idempotent: checks each package with dpkg-query and installs only what is
# missing. Uses sudo when not run as root. Prints what it does.
set -euo pipefail

PACKAGES=(
  # toolchain
  build-essential cmake ninja-build ccache pkg-config git
  clang-14 libfuzzer-14-dev libclang-rt-14-dev clang-format
  # libraries (see README: Dependencies)
  libabsl-dev
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  liburing-dev
  libisal-dev
  libzstd-dev liblz4-dev libsnappy-dev zlib1g-dev
  libcli11-dev libspdlog-dev libfmt-dev libcpp-httplib-dev
  libgoogle-perftools-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  # tools used by benchmarks and tests (fio, iperf3 and Redis only for the
  # reference figures of docs/benchmarks.md)
  fio iperf3 redis-server redis-tools
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  if [[ "$status" != "install ok installed" ]]; then
    missing+=("$pkg")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [[ $(id -u) -ne 0 ]]; then
  SUDO="sudo"
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "install-deps: done"
