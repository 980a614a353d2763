#!/usr/bin/env bash
# Installs the Debian 12 packages tidepool needs; installs nothing that is already there.
#   deploy/setup-debian.sh build   compiler, CMake and the libraries (to build and run)
#   deploy/setup-debian.sh run     build + curl (deploy/run.sh: the README's "Try it" uses it)
#   deploy/setup-debian.sh test    build + what the test suite uses (python3-zmq, Prometheus,
#                                  matplotlib for the benchmark's --plot,
#                                  clang for the fuzzers, podman for the container tests,
#                                  node and npm for the Kubernetes manifest check,
#                                  iproute2 and nftables for the multi-host tests,
#                                  tmux for `tidepool top` in a real terminal,
#                                  systemd for systemd-analyze verify of the shipped unit)
set -euo pipefail

# prometheus-cpp-dev pulls in libcivetweb-dev (its CMake config looks for civetweb for the
# pull component); tidepool uses only prometheus-cpp's core and serves HTTP itself.
build_packages=(g++ cmake ninja-build pkgconf libzmq3-dev cppzmq-dev nlohmann-json3-dev
                prometheus-cpp-dev doctest-dev)
run_packages=(curl)
test_packages=(python3 python3-zmq python3-matplotlib python3-yaml prometheus clang
               libclang-rt-14-dev curl procps iproute2 nftables podman buildah runc debootstrap
               uidmap docker-compose nodejs npm tmux systemd)
# A package whose command is already on the machine from elsewhere (NodeSource's nodejs
# ships npm and conflicts with Debian's npm package) counts as present.
declare -A command_of=([nodejs]=node [npm]=npm)

case "${1:-build}" in
  build) wanted=("${build_packages[@]}") ;;
  run) wanted=("${build_packages[@]}" "${run_packages[@]}") ;;
  test) wanted=("${build_packages[@]}" "${test_packages[@]}") ;;
  *) echo "usage: $0 build|run|test" >&2; exit 2 ;;
esac

missing=()
for package in "${wanted[@]}"; do
  [[ -n ${command_of[$package]:-} ]] && command -v "${command_of[$package]}" >/dev/null && continue
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" ||
    missing+=("$package")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

sudo=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  sudo=sudo
fi
echo "installing: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# Debian's prometheus package starts a server on :9090 by default; tests run their own.
$sudo apt-get install -y -qq "${missing[@]}" >/dev/null
