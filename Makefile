# BES — the Backup Engine Service. `make run` starts the appliance on its
# embedded default; `make test` installs what the tests need and runs them.
GO      ?= go
BIN     ?= bin
DATA    ?= bes-data
PKGS    := ./...
STATICCHECK_VERSION ?= v0.6.1

.PHONY: all build run test test-deps bench bench-compare lint fuzz clean e2e

all: build

build:
	$(GO) build -o $(BIN)/bes ./cmd/bes

run: build
	$(BIN)/bes serve --data $(DATA) --verbose

# Debian packages the tests use: gcc for cgo (SQLite), python3 for corpus
# generators, e2fsprogs/dosfstools/mtools/util-linux for disk fixtures,
# fdisk (sfdisk), gdisk (sgdisk) and mount (losetup) for partition tables,
# fuse3 (fusermount3) for bes mount, bc/time for scripts.
TEST_DEBS := gcc libc6-dev python3 util-linux e2fsprogs fdisk gdisk dosfstools mtools mount fuse3 bc time openssl
test-deps:
	@missing=""; for p in $(TEST_DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq -o DPkg::Lock::Timeout=300 $$missing; \
	  else echo "missing Debian packages:$$missing (run as root or install them)"; exit 1; fi; fi
	$(GO) mod download

test: test-deps
	$(GO) vet $(PKGS)
	$(GO) test -count=1 -timeout 25m $(PKGS)

# Race detector run of the concurrent packages (slower; part of lint/CI extras).
test-race:
	$(GO) test -count=1 -race ./store/... ./agent/... ./diskimg/mount/...

# Go benchmarks of every stage, then the repository lifecycle at scale
# (needs root): gc on 1M chunks against restic prune, replication to a
# local disk set and to S3 (BENCH_LIFECYCLE_OUT is its BENCH_OUT).
bench: build
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 3x ./store/... ./agent/... ./diskimg/...
	$(GO) test -run '^$$' -bench . -benchtime 500x -timeout 30m ./appliance/server/
	BENCH_OUT=$${BENCH_LIFECYCLE_OUT:-bench-lifecycle.json} scripts/bench-lifecycle.sh $(BIN)/bes

# Then disk images (needs root): BENCH_IMAGE_OUT / BENCH_IMAGE_DIR are its
# BENCH_OUT / BENCH_DIR, so the two scripts never share a file or directory.
bench-compare: build
	scripts/bench-compare.sh $(BIN)/bes
	BENCH_OUT=$${BENCH_IMAGE_OUT:-bench-image.json} BENCH_DIR=$${BENCH_IMAGE_DIR:-} scripts/bench-image.sh $(BIN)/bes

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzDecodeTrailer -fuzztime 30s ./store/pack/
	$(GO) test -run '^$$' -fuzz FuzzDecode -fuzztime 30s ./store/manifest/
	$(GO) test -run '^$$' -fuzz FuzzDecodeHeader -fuzztime 30s ./store/ec/
	$(GO) test -run '^$$' -fuzz FuzzDecodeFooter -fuzztime 30s ./store/ec/
	$(GO) test -run '^$$' -fuzz FuzzRead -fuzztime 30s -fuzzminimizetime 5s ./diskimg/layout/
	$(GO) test -run '^$$' -fuzz FuzzExt -fuzztime 30s -fuzzminimizetime 2s ./diskimg/usedmap/
	$(GO) test -run '^$$' -fuzz FuzzFAT -fuzztime 30s -fuzzminimizetime 2s ./diskimg/usedmap/
	$(GO) test -run '^$$' -fuzz FuzzExt -fuzztime 30s -fuzzminimizetime 3s ./diskimg/fsread/
	$(GO) test -run '^$$' -fuzz FuzzFAT -fuzztime 30s -fuzzminimizetime 3s ./diskimg/fsread/

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet $(PKGS)
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) $(PKGS)

e2e: build
	BES_E2E=1 $(GO) test -count=1 -timeout 60m ./cmd/bes/

clean:
	rm -rf $(BIN)
