#!/usr/bin/env bash
# Build examples/cpp/classify against the libtorch that the installed torch wheel ships (headers in
# torch/include, libraries in torch/lib). Plain g++, no CMake: the wheel's CMake config looks for CUDA, and a
# CPU program needs only libtorch_cpu and libc10, plus libtorch itself, which an AOTInductor package's compiled
# library names as a dependency when the loader opens it, libjpeg for photos and nlohmann/json for the manifest.
#
#   examples/cpp/build.sh [OUTPUT_DIR]      (PYTHON=... picks the interpreter whose torch to use)
#   SANITIZE=1 examples/cpp/build.sh DIR    the same program under AddressSanitizer and UndefinedBehaviorSanitizer,
#                                           as the test suite builds it: any memory error or undefined behaviour
#                                           aborts the run with a report instead of going unnoticed
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/build}"
python="${PYTHON:-python3}"
cxx="${CXX:-g++}"
torch_dir="$("$python" -c 'import os, torch; print(os.path.dirname(torch.__file__))')"
abi="$("$python" -c 'import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))')"

# A header the build needs, installed from Debian's packages when missing and this runs as root.
need_header() {
  local header="$1" package="$2" elsewhere="$3"
  if printf '#include <cstdio>\n#include <%s>\n' "$header" | "$cxx" -std=c++20 -x c++ -fsyntax-only - 2>/dev/null; then
    return
  fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package") >&2
  else
    echo "$header not found: install $package (Debian/Ubuntu) or $elsewhere" >&2
    exit 1
  fi
}
need_header jpeglib.h libjpeg-dev libjpeg-turbo-devel
need_header nlohmann/json.hpp nlohmann-json3-dev json-devel

flags=(-O2)
if [ -n "${SANITIZE:-}" ]; then
  # float-cast-overflow is not part of GCC's "undefined" group; a manifest number cast to an integer is exactly
  # what it would catch. -fno-sanitize-recover: the first finding ends the run with a non-zero exit.
  flags=(-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=all)
fi
mkdir -p "$out"
"$cxx" -std=c++20 "${flags[@]}" -Wall -Wextra -D_GLIBCXX_USE_CXX11_ABI="$abi" \
  -isystem "$torch_dir/include" -isystem "$torch_dir/include/torch/csrc/api/include" \
  "$here/classify.cpp" -o "$out/classify.partial" \
  -L"$torch_dir/lib" -Wl,--no-as-needed -ltorch -ltorch_cpu -lc10 -Wl,--as-needed -Wl,-rpath,"$torch_dir/lib" -ljpeg
mv "$out/classify.partial" "$out/classify"
echo "built $out/classify"
