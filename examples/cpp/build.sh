#!/usr/bin/env bash
# Build examples/cpp/classify against the libtorch that the installed torch wheel ships (headers in
# torch/include, libraries in torch/lib). Plain g++, no CMake: the wheel's CMake config looks for CUDA, and a
# CPU program needs only libtorch_cpu and libc10, plus libtorch itself, which an AOTInductor package's compiled
# library names as a dependency when the loader opens it, and libjpeg for photos.
#
#   examples/cpp/build.sh [OUTPUT_DIR]      (PYTHON=... picks the interpreter whose torch to use)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/build}"
python="${PYTHON:-python3}"
torch_dir="$("$python" -c 'import os, torch; print(os.path.dirname(torch.__file__))')"
abi="$("$python" -c 'import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))')"
# JPEG photos are decoded by libjpeg-turbo (Debian: libjpeg62-turbo-dev), installed here when missing and possible.
if ! echo '#include <stdio.h>
#include <jpeglib.h>' | "${CXX:-g++}" -x c++ -fsyntax-only - 2>/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libjpeg-dev) >&2
  else
    echo "libjpeg headers not found: install libjpeg-dev (Debian/Ubuntu) or libjpeg-turbo-devel" >&2
    exit 1
  fi
fi
mkdir -p "$out"
"${CXX:-g++}" -std=c++20 -O2 -Wall -D_GLIBCXX_USE_CXX11_ABI="$abi" \
  -isystem "$torch_dir/include" -isystem "$torch_dir/include/torch/csrc/api/include" \
  "$here/classify.cpp" -o "$out/classify.partial" \
  -L"$torch_dir/lib" -Wl,--no-as-needed -ltorch -ltorch_cpu -lc10 -Wl,--as-needed -Wl,-rpath,"$torch_dir/lib" -ljpeg
mv "$out/classify.partial" "$out/classify"
echo "built $out/classify"
