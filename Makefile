# orderflow — `make run` serves the API, `make test` runs every test. Both install what is
# missing (Debian packages), build, and use a private PostgreSQL cluster when DATABASE_URL is unset.
SHELL := /bin/bash
.DEFAULT_GOAL := run

BUILD_DIR  ?= build
BUILD_TYPE ?= RelWithDebInfo
PORT       ?= 3000
PG_PORT    ?= 25432
JOBS       ?= $(shell nproc)

.PHONY: deps build run test bench db-start db-stop psql clean format

deps:
	@scripts/deps.sh

build: deps
	@cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) >/dev/null
	@cmake --build $(BUILD_DIR) -j $(JOBS)

# Serves on PORT. Without DATABASE_URL, the private cluster (started if needed) is used: the
# schema is applied as its owner, requests run as the least-privileged orderflow_app.
run: build
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

# The benchmark (bench/run.sh; knobs BENCH_DURATION, BENCH_CONCURRENCY, BENCH_HISTORY,
# BENCH_SCENARIOS): a Release build in its own directory, wrk, and a throwaway cluster.
BENCH_BUILD_DIR ?= build-release
bench:
	@scripts/deps.sh wrk
	@cmake -S . -B $(BENCH_BUILD_DIR) -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build $(BENCH_BUILD_DIR) -j $(JOBS) --target orderflow
	@bench/run.sh $(BENCH_BUILD_DIR)

# The private cluster of `make run`, for psql sessions.
db-start: deps
	@scripts/pg.sh start "$$(scripts/pg.sh dir run)" $(PG_PORT)

db-stop:
	@scripts/pg.sh stop "$$(scripts/pg.sh dir run)"

psql: db-start
	@psql "$$(scripts/pg.sh url "$$(scripts/pg.sh dir run)" $(PG_PORT))"

format:
	@clang-format -i src/*.h src/*.cc tests/*.cc tests/e2e/*.h tests/e2e/*.cc

clean:
	@rm -rf $(BUILD_DIR)
