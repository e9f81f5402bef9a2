#!/usr/bin/env bash
# Installs everything heapprof needs to build, test and run its demo, from
# Debian packages. Safe to run again: it only calls apt-get when something
# is missing. Needs root (or sudo) the first time on a fresh machine.
set -euo pipefail

packages=(
  build-essential cmake pkg-config     # compilers and the build
  libunwind-dev                        # stack capture (unw_backtrace)
  libdw-dev libelf-dev                 # in-process symbolization
  libiberty-dev                        # C++/Rust demangling (static libiberty.a)
  protobuf-c-compiler libprotobuf-c-dev # profile.proto → C
  zlib1g-dev                           # gzip
  golang-go                            # go tool pprof, used by every test
  graphviz                             # go tool pprof -svg in the demo
  python3 perl git sqlite3             # real programs the tests run under the profiler
  libpython3.11-testsuite              # CPython's own test suite, run under the profiler
  redis-server redis-tools             # a real server (and its benchmark) likewise
  libjemalloc2 libtcmalloc-minimal4    # other allocators beneath heapprof, in the tests
  clang libclang-rt-14-dev             # libFuzzer for the fuzz tests
  rustc                                # Debian's Rust compiler: a Rust program
                                       # whose mangled names the tests read
  gdb                                  # heapprof attach/detach inject with it
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
    missing+=("$p")
done

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
fi

for tool in cmake cc c++ clang protoc-c go dot gdb; do
  command -v "$tool" >/dev/null || { echo "setup: $tool is still missing" >&2; exit 1; }
done
