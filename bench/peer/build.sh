#!/usr/bin/env bash
# Build llama.cpp's `test-backend-ops` (ggml CPU backend only) outside our repository, for the peer benchmarks.
#   bench/peer/build.sh [peer_dir]          (default /work/peers/llama.cpp)
# test-backend-ops includes only ggml headers, so we build only the `ggml` target (no libllama, no common:
# ~1/3 of the compile work, which matters on a shared 2-core box) and compile the one test source against it.
# Nothing from llama.cpp is copied into this repository.
set -euo pipefail

PEER_DIR=${1:-/work/peers/llama.cpp}
LLAMA_MIRROR=${LLAMA_MIRROR:-/work/.mirror/unslothai+llama.cpp/repo}   # or https://github.com/ggml-org/llama.cpp
LLAMA_COMMIT=${LLAMA_COMMIT:-d32676d77}
JOBS=${JOBS:-2}
BUILD="$PEER_DIR/build"

if [ ! -d "$PEER_DIR/.git" ]; then
  mkdir -p "$(dirname "$PEER_DIR")"
  git clone -q --no-checkout "$LLAMA_MIRROR" "$PEER_DIR"
  # Only the sources we build; the mirror may lack large binary fixtures elsewhere in the tree.
  git -C "$PEER_DIR" checkout -q "$LLAMA_COMMIT" -- CMakeLists.txt cmake ggml src include common tests vendor
fi

nice -n 10 cmake -S "$PEER_DIR" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF \
  -DGGML_NATIVE=ON -DGGML_OPENMP=ON -DGGML_CUDA=OFF -DGGML_METAL=OFF -DGGML_VULKAN=OFF -DLLAMA_CURL=OFF \
  -DLLAMA_BUILD_COMMON=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
  -DLLAMA_BUILD_SERVER=OFF >/dev/null
nice -n 10 cmake --build "$BUILD" --target ggml -j "$JOBS"

mkdir -p "$BUILD/bin"
libs=$(find "$BUILD" -name 'libggml*.a' | sort -r)   # libggml.a, libggml-cpu.a, libggml-base.a: link order
# Same flags upstream's Release build gives the test (-O3 -DNDEBUG), plus the OpenMP the CPU backend uses.
nice -n 10 g++ -std=c++17 -O3 -DNDEBUG -march=native -fopenmp -I"$PEER_DIR/ggml/include" \
  "$PEER_DIR/tests/test-backend-ops.cpp" -o "$BUILD/bin/test-backend-ops" \
  -Wl,--start-group $libs -Wl,--end-group -lpthread -lm
echo "built $BUILD/bin/test-backend-ops (llama.cpp $(git -C "$PEER_DIR" rev-parse --short "$LLAMA_COMMIT"))"
