# The README's Quick start. CMake does the building; this file installs what
# a fresh Debian machine lacks and strings the steps together.
BUILD      ?= build
CMAKE_FLAGS ?=
ASAN_BUILD ?= build-asan
TSAN_BUILD ?= build-tsan
FUZZ_BUILD ?= build-fuzz
JOBS       ?= $(shell nproc)
FUZZ_SECONDS ?= 60

.PHONY: all deps build check check-asan check-tsan demo bench fuzz install clean

all: build

deps:
	@scripts/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

# Every test under CTest in the normal build; then the unit tests, fuzz
# corpus replays and the quick CLI tests again under AddressSanitizer +
# UndefinedBehaviorSanitizer; then the threaded modules' tests (digest,
# store, BLAKE3, loader, hub, pull) under ThreadSanitizer. Warnings are errors
# here: -Wconversion and the rest stay clean.
check: CMAKE_FLAGS += -DCELLAR_WERROR=ON
check: build
	ctest --test-dir $(BUILD) --output-on-failure -j$(JOBS)
	@$(MAKE) --no-print-directory check-asan
	@$(MAKE) --no-print-directory check-tsan

# Of the CLI tests only the quick ones (CTest label "quick": hash, inspect,
# the BLAKE3 tiers, and the hostile-input ones: pickle, dduf, get, identify,
# hostile) run again under ASan, to keep make check under ten minutes on two
# cores; the pull runs under TSan instead.
# ASAN_LABELS='unit|cli' runs them all.
ASAN_LABELS ?= unit|quick
SAN_ENV = ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1
check-asan: deps
	@cmake -S . -B $(ASAN_BUILD) -DCELLAR_SANITIZE=ON -DCELLAR_WERROR=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
	@cmake --build $(ASAN_BUILD) -j$(JOBS)
	$(SAN_ENV) ctest --test-dir $(ASAN_BUILD) -L '$(ASAN_LABELS)' --output-on-failure -j$(JOBS)

# Only the threaded tests and what they run are built. Those tests mostly
# wait on each other and on the loopback server, so one more than the
# cores run at once.
TSAN_TARGETS = test_digest test_store test_blake3 test_hub test_load cellar
check-tsan: deps
	@cmake -S . -B $(TSAN_BUILD) -DCELLAR_TSAN=ON -DCELLAR_WERROR=ON \
	  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(TSAN_BUILD) -j$(JOBS) --target $(TSAN_TARGETS)
	TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
	  ctest --test-dir $(TSAN_BUILD) -L threaded --output-on-failure -j$$(($(JOBS) + 1))

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
	rm -rf $(BUILD) $(ASAN_BUILD) $(TSAN_BUILD) $(FUZZ_BUILD)
