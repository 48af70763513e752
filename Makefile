# The README's Quickstart. `make test` installs what is missing, builds the
# release preset and runs the whole suite; `make run` starts one broker.
.PHONY: all deps build test test-asan fuzz run clean format

PRESET ?= release
BUILD_DIR := build/$(PRESET)
JOBS ?= $(shell nproc)

all: build

deps:
	bash deploy/install-deps.sh

build: deps
	cmake --preset $(PRESET) >/dev/null
	cmake --build $(BUILD_DIR) -j $(JOBS)

test: build
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j $(JOBS)

test-asan:
	$(MAKE) test PRESET=asan

# A bounded libFuzzer run of every fuzz target on its seed corpus.
FUZZ_SECONDS ?= 60
fuzz: deps
	cmake --preset fuzz >/dev/null
	cmake --build build/fuzz -j $(JOBS) --target fuzzers
	bash tests/fuzz/run-fuzzers.sh build/fuzz $(FUZZ_SECONDS)

run: build
	@if [ -x $(BUILD_DIR)/broker/runnel-broker ]; then \
	  mkdir -p data && exec $(BUILD_DIR)/broker/runnel-broker --data-dir ./data; \
	else \
	  $(BUILD_DIR)/tools/runnel --help; \
	fi

format:
	git ls-files '*.h' '*.cc' | xargs clang-format -i

clean:
	rm -rf build
