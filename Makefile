# The README's Quickstart. `make test` installs what is missing, builds the
# release preset and runs the whole suite; `make run` starts one broker.
.PHONY: all deps build test test-asan fuzz run clean format

PRESET ?= release
BUILD_DIR := build/$(PRESET)
JOBS ?= $(shell nproc)
# ccache hits across clones of the repository (CI builds in a fresh clone).
export CCACHE_BASEDIR := $(CURDIR)
export CCACHE_NOHASHDIR := 1

all: build

deps:
	bash deploy/install-deps.sh

build: deps
	cmake --preset $(PRESET) >/dev/null
	cmake --build $(BUILD_DIR) -j $(JOBS)

test: build
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j $(JOBS) --timeout 600

test-asan:
	$(MAKE) test PRESET=asan

# A bounded libFuzzer run of every fuzz target on its seed corpus.
FUZZ_SECONDS ?= 60
fuzz: deps
	cmake --preset fuzz >/dev/null
	cmake --build build/fuzz -j $(JOBS) --target fuzzers
	bash tests/fuzz/run-fuzzers.sh build/fuzz $(FUZZ_SECONDS)

RUNNEL := $(BUILD_DIR)/tools/runnel
run: build
	@mkdir -p data
	@echo "Starting one broker with its data in ./data (gRPC 127.0.0.1:7070, HTTP 127.0.0.1:7071)."
	@echo "In another terminal, create a topic, then produce and consume:"
	@echo "  $(RUNNEL) topic create demo --partitions 3"
	@echo "  echo 'hello' | $(RUNNEL) produce demo"
	@echo "  $(RUNNEL) consume demo --from-beginning --follow"
	@exec $(BUILD_DIR)/broker/runnel-broker --data-dir ./data

format:
	git ls-files '*.h' '*.cc' | xargs clang-format -i

clean:
	rm -rf build
