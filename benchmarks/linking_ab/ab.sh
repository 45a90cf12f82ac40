#!/usr/bin/env bash
# Compare the linking kernel of a git revision (default HEAD) with the working tree's, in one process.
# Usage: [CXXFLAGS=...] bash benchmarks/linking_ab/ab.sh [REV [worst|full]]  (CXXFLAGS reach both versions)
# A variant kept as a patch (e.g. two_thread_step_split.patch) is measured with `git apply PATCH` first.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
git -C "$root" show "${1:-HEAD}:cpp_ext/linking_core.hpp" > "$tmp/old.hpp"
cp "$root/cpp_ext/linking_core.hpp" "$tmp/new.hpp"
g++ -O3 -std=c++17 ${CXXFLAGS:-} -DOLDHDR="\"$tmp/old.hpp\"" -pthread -DNEWHDR="\"$tmp/new.hpp\"" "$root/benchmarks/linking_ab/ab.cpp" -o "$tmp/ab"
"$tmp/ab" "${2:-worst}"
