# orderflow — `make run` serves the API, `make test` runs every test. Both install what is
# missing (Debian packages), build, and use a private PostgreSQL cluster when DATABASE_URL is unset.
SHELL := /bin/bash
.DEFAULT_GOAL := run

BUILD_DIR  ?= build
BUILD_TYPE ?= RelWithDebInfo
PORT       ?= 3000
PG_PORT    ?= 25432
JOBS       ?= $(shell nproc)
FUZZ_DIR     ?= build-fuzz
FUZZ_SECONDS ?= 60
SANITIZE_DIR ?= build-asan

.PHONY: deps build server run test test-citus bench fuzz sanitize db-start db-stop psql clean format

deps:
	@scripts/deps.sh

build: deps
	@cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) >/dev/null
	@cmake --build $(BUILD_DIR) -j $(JOBS)

# The server binary alone, quietly: one line, and the compiler's output only when it fails.
# The sub-make runs without this make's flags so it prints no "Entering directory" lines.
server: deps
	@cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) >/dev/null
	@echo "building $(BUILD_DIR)/orderflow"
	@log=$(BUILD_DIR)/server-build.log; \
	 env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL \
	   cmake --build $(BUILD_DIR) -j $(JOBS) --target orderflow >"$$log" 2>&1 || \
	   { cat "$$log"; echo "make server: the build failed (log: $$log)" >&2; exit 1; }

# Serves on PORT. Without DATABASE_URL, the private cluster (started if needed) is used: the
# schema is applied as its owner, requests run as the least-privileged orderflow_app.
run: server
	@if [ -z "$$DATABASE_URL" ]; then \
	   dir=$$(scripts/pg.sh dir run); \
	   MIGRATION_DATABASE_URL=$$(scripts/pg.sh start "$$dir" $(PG_PORT)) || exit 1; \
	   DATABASE_URL=$$(scripts/pg.sh api-url "$$dir" $(PG_PORT)); \
	   export DATABASE_URL MIGRATION_DATABASE_URL; \
	 fi; \
	 PORT=$(PORT) exec $(BUILD_DIR)/orderflow

# Every test on a throwaway cluster; nothing is left running afterwards.
test: build
	@scripts/test.sh $(BUILD_DIR)

# Every pgTAP and end-to-end suite against a Citus cluster (coordinator and two workers on
# loopback; scripts/test_citus.sh). Needs Citus installed for PostgreSQL 15: it is not a Debian
# package, and scripts/citus.sh check says how to build it.
test-citus: build
	@scripts/test_citus.sh $(BUILD_DIR)

# The benchmark (bench/run.sh; knobs BENCH_DURATION, BENCH_CONCURRENCY, BENCH_HISTORY,
# BENCH_SCENARIOS): a Release build in its own directory, wrk, and a throwaway cluster.
BENCH_BUILD_DIR ?= build-release
bench:
	@scripts/deps.sh wrk
	@cmake -S . -B $(BENCH_BUILD_DIR) -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build $(BENCH_BUILD_DIR) -j $(JOBS) --target orderflow
	@bench/run.sh $(BENCH_BUILD_DIR)
	@bench/provider.sh $(BENCH_BUILD_DIR)

# libFuzzer over request validation and error mapping (clang, ASan, UBSan) for FUZZ_SECONDS.
# Inputs it finds go to $(FUZZ_DIR)/corpus, crashes to $(FUZZ_DIR)/crashes; the seeds in
# tests/fuzz/corpus are only read.
fuzz:
	@scripts/deps.sh clang libclang-rt-14-dev
	@CC=clang CXX=clang++ cmake -S . -B $(FUZZ_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	   -DORDERFLOW_FUZZ=ON >/dev/null
	@cmake --build $(FUZZ_DIR) -j $(JOBS) --target request_fuzzer
	@mkdir -p $(FUZZ_DIR)/corpus $(FUZZ_DIR)/crashes
	@$(FUZZ_DIR)/request_fuzzer -max_total_time=$(FUZZ_SECONDS) -timeout=10 -max_len=8192 \
	   -dict=tests/fuzz/request.dict -artifact_prefix=$(FUZZ_DIR)/crashes/ -print_final_stats=1 \
	   $(FUZZ_DIR)/corpus tests/fuzz/corpus

# Every test (as make test) with the server and the test binaries built with AddressSanitizer
# and UndefinedBehaviorSanitizer; any sanitizer report fails the run (scripts/sanitize.sh).
# clang, because GCC's combined ASan+UBSan runtime prints UBSan reports to stderr whatever
# log_path says, and a server's stderr ends in a log file no one reads.
sanitize:
	@scripts/deps.sh clang libclang-rt-14-dev
	@CC=clang CXX=clang++ cmake -S . -B $(SANITIZE_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	   -DORDERFLOW_SANITIZE=ON >/dev/null
	@cmake --build $(SANITIZE_DIR) -j $(JOBS)
	@scripts/sanitize.sh $(SANITIZE_DIR)

# The private cluster of `make run`, for psql sessions.
db-start: deps
	@scripts/pg.sh start "$$(scripts/pg.sh dir run)" $(PG_PORT)

db-stop:
	@scripts/pg.sh stop "$$(scripts/pg.sh dir run)"

psql: db-start
	@psql "$$(scripts/pg.sh url "$$(scripts/pg.sh dir run)" $(PG_PORT))"

format:
	@clang-format -i src/*.h src/*.cc src/admin/*.h src/admin/*.cc tests/*.cc tests/e2e/*.h tests/e2e/*.cc tests/fuzz/*.cc

clean:
	@rm -rf $(BUILD_DIR) $(FUZZ_DIR) $(SANITIZE_DIR)
