# Thin wrapper: installs missing Debian packages, configures and builds with CMake + Ninja.
#   make demo    build, then generate text with the embedded demo model
#   make test    build, then run every test through ctest
#   make bench   kernel benchmarks (Google Benchmark)
#   make fuzz    build the libFuzzer targets with clang and run each briefly
#   make sanitize  ThreadSanitizer and ASan/UBSan builds of the core + kernel tests (the parsers of untrusted input run under ASan/UBSan in make fuzz)
#   make arm64-test  aarch64 cross-build, core + kernel + golden tests under qemu-user

BUILD   ?= build
JOBS    ?= $(shell nproc)
PACKAGES = g++ cmake ninja-build pkg-config libgtest-dev libgmock-dev libbenchmark-dev nlohmann-json3-dev \
           libfmt-dev libcli11-dev libxxhash-dev libzstd-dev libpcre2-dev libicu-dev libboost-dev python3-jinja2 \
           libhiredis-dev redis-server nginx libhwy-dev libopenblas-dev iproute2
FUZZ_PACKAGES = clang libclang-rt-14-dev
FUZZ_SECONDS ?= 20

.PHONY: deps fuzz-deps node-deps configure build demo test bench fuzz sanitize cuda-check arm64-deps arm64-test clean

deps:
	@missing=$$(for p in $(PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else echo "missing Debian packages; run: sudo apt-get install -y $$missing"; exit 1; fi; \
	fi

fuzz-deps:
	@$(MAKE) --no-print-directory deps PACKAGES="$(FUZZ_PACKAGES)"

$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release

configure: deps $(BUILD)/build.ninja

build: configure
	cmake --build $(BUILD) -j $(JOBS)

demo: build
	./$(BUILD)/linfer generate --prompt "ROMEO:" -n 200

# The server tests drive `linfer serve` with the official openai client, pinned in
# tests/server/js/package-lock.json and installed into that folder (npm registry).
node-deps:
	@command -v npm >/dev/null || $(MAKE) --no-print-directory deps PACKAGES="nodejs npm"
	@[ -d tests/server/js/node_modules/openai ] || npm ci --prefix tests/server/js --no-audit --no-fund

test: build node-deps
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

bench: build
	@for b in $(BUILD)/bench_*; do [ -x $$b ] && echo "== $$b" && $$b --benchmark_min_time=0.2 || exit 1; done

fuzz: fuzz-deps deps
	CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DLINFER_FUZZ=ON -DLINFER_TESTS=OFF -DLINFER_BENCH=OFF
	cmake --build build-fuzz -j $(JOBS) --target $(call tests_in,fuzz)
	@for f in build-fuzz/fuzz_*; do [ -x $$f ] || continue; mkdir -p build-fuzz/corpus/$$(basename $$f); \
	  echo "== $$f ($(FUZZ_SECONDS) s)"; \
	  $$f -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 build-fuzz/corpus/$$(basename $$f) tests/fuzz/seeds/$$(basename $$f) || exit 1; done

# One sanitizer build per runtime (they cannot share a process), each with only the suites it needs;
# the 100k-token numerics runs check accuracy, not memory or threads, and are left to `make test`.
SANITIZE_FLAGS = -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLINFER_BENCH=OFF
tests_in = $(basename $(notdir $(wildcard $(addsuffix /*.cpp,$(addprefix tests/,$(1))))))
sanitize: deps
	cmake -S . -B build-tsan $(SANITIZE_FLAGS) -DLINFER_SANITIZE=thread -DLINFER_TEST_DIRS="core;kernels"
	cmake --build build-tsan -j $(JOBS) --target $(call tests_in,core kernels)
	cd build-tsan && TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 ctest --output-on-failure -j $(JOBS) -E HundredThousand
	cmake -S . -B build-asan $(SANITIZE_FLAGS) -DLINFER_SANITIZE=address,undefined -DLINFER_TEST_DIRS="core;kernels"
	cmake --build build-asan -j $(JOBS) --target $(call tests_in,core kernels)
	cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure -j $(JOBS) -E HundredThousand

# The CUDA build where nvcc is (no GPU needed): compiles the CUDA kernels, the CUDA backend and the models
# with their tests, which skip the GPU cases without a device (docs/gpu.md). tools/gpu_check.sh runs them on
# a GPU.
NVCC ?= /usr/local/cuda/bin/nvcc
cuda-check: deps
	@if [ ! -x $(NVCC) ]; then echo "cuda-check: $(NVCC) not found: CUDA build not checked"; exit 0; fi; \
	cmake -S . -B build-cuda -G Ninja -DCMAKE_BUILD_TYPE=Release -DLINFER_CUDA=ON -DLINFER_MODELS_ONLY=ON \
	  -DCMAKE_CUDA_COMPILER=$(NVCC) && cmake --build build-cuda -j $(JOBS) && \
	ctest --test-dir build-cuda -L cuda --output-on-failure

# aarch64: Debian's cross compiler against the arm64 libraries (multiarch), the binaries run under
# qemu-user (cmake/aarch64-linux-gnu.cmake makes ctest and the golden tests start them through it).
# Suites: core, kernels (every path: scalar and neon) and golden; only their targets and the CLI are built.
# ARM64_CTEST passes ctest options (CI leaves out the 100k-token runs, 79 s under qemu, and the accuracy
# measurements, ~5 min: -E 'HundredThousand|GoldenEval|QuantAccuracy'). From cold (no ccache) on the
# 2-core build machine: 13 min at load average 4.
ARM64_PACKAGES = g++-aarch64-linux-gnu qemu-user nlohmann-json3-dev libcli11-dev $(addsuffix :arm64,libfmt-dev \
                 libgtest-dev libgmock-dev libxxhash-dev libzstd-dev libpcre2-dev libicu-dev libboost-dev \
                 libhiredis-dev libhwy-dev)
ARM64_CTEST ?=
arm64-deps:
	@if ! dpkg --print-foreign-architectures | grep -qx arm64; then \
	  if [ "$$(id -u)" = 0 ]; then dpkg --add-architecture arm64 && apt-get update -qq; \
	  else echo "run: sudo dpkg --add-architecture arm64 && sudo apt-get update"; exit 1; fi; \
	fi
	@$(MAKE) --no-print-directory deps PACKAGES="$(ARM64_PACKAGES)"

arm64-test: deps arm64-deps
	cmake -S . -B build-arm64 -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake \
	  -DLINFER_BENCH=OFF -DLINFER_TEST_DIRS="core;kernels;golden"
	cmake --build build-arm64 -j $(JOBS) --target linfer $(call tests_in,core kernels golden)
	cd build-arm64 && ctest --output-on-failure -j $(JOBS) $(ARM64_CTEST)

clean:
	rm -rf $(BUILD) build-fuzz build-tsan build-asan build-cuda build-arm64
