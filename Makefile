# The README's Quick start. CMake does the building; this file installs what
# a fresh Debian machine lacks and strings the steps together.
BUILD      ?= build
CMAKE_FLAGS ?=
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
JOBS       ?= $(shell nproc)
FUZZ_SECONDS ?= 60

.PHONY: all deps build check check-asan demo bench fuzz install clean

all: build

deps:
	@scripts/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

# Every test under CTest in the normal build, then the unit tests and fuzz
# corpus replays again under AddressSanitizer + UndefinedBehaviorSanitizer.
# Warnings are errors here: -Wconversion and the rest stay clean.
check: CMAKE_FLAGS += -DCELLAR_WERROR=ON
check: build
	ctest --test-dir $(BUILD) --output-on-failure -j$(JOBS)
	@$(MAKE) --no-print-directory check-asan

check-asan: deps
	@cmake -S . -B $(ASAN_BUILD) -DCELLAR_SANITIZE=ON -DCELLAR_WERROR=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
	@cmake --build $(ASAN_BUILD) -j$(JOBS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --test-dir $(ASAN_BUILD) -L unit --output-on-failure -j$(JOBS)

demo: build
	@scripts/demo.sh $(BUILD)/cellar

bench: build
	@scripts/install-deps.sh --bench
	@for b in bench/*.sh; do echo "== $$b"; bash $$b $(BUILD)/cellar || exit 1; done

# Runs every libFuzzer target for FUZZ_SECONDS each; new inputs that grow
# coverage land in fuzz/corpus/<target>/ and are replayed by `make check`.
fuzz: deps
	@cmake -S . -B $(FUZZ_BUILD) -DCMAKE_C_COMPILER=clang -DCELLAR_FUZZ=ON \
	  -DCELLAR_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
	@cmake --build $(FUZZ_BUILD) -j$(JOBS)
	@for f in fuzz/fuzz_*.c; do n=$$(basename $$f .c); mkdir -p fuzz/corpus/$$n; \
	  echo "== $$n"; $(FUZZ_BUILD)/$$n -max_total_time=$(FUZZ_SECONDS) fuzz/corpus/$$n || exit 1; done

install: build
	cmake --install $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
