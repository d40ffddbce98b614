# godwit — see README.md. `make demo` and `make test` install what is
# missing (apt-get, Go module proxy), build and run.
export PATH := /usr/local/go/bin:$(PATH)
GO ?= go
BIN := bin
DEMO_DIR ?= $(HOME)/.godwit/demo

.PHONY: all build deps demo test test-short bench clean fmt vet

all: build

build:
	$(GO) build -o $(BIN)/godwit ./cmd/godwit
	CGO_ENABLED=0 $(GO) build -o $(BIN)/godwit-guest ./cmd/godwit-guest

deps:
	@scripts/install-deps.sh

# A three-host cluster on this machine, a real VM booted on it.
demo: deps build
	@DEMO_DIR=$(DEMO_DIR) scripts/demo.sh

# Everything, including real-QEMU integration tests and the PostgreSQL
# store suite, with the race detector. One package at a time (-p 1): the
# real-QEMU packages each run TCG guests, and two of them at once on a
# 2-core machine starve the guests (see docs/migration.md on TCG oopses).
test: deps build
	@pg=$$(scripts/test-postgres.sh | tail -n 1) && \
	GODWIT_TEST_POSTGRES="$$pg" GODWIT_TEST_BIN=$(CURDIR)/$(BIN) \
	$(GO) test -race -count=1 -p 1 -timeout 25m ./...

# Unit tests only: what `go test ./...` runs on a machine with nothing
# installed.
test-short:
	$(GO) test -short ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

vet:
	$(GO) vet ./...

clean:
	rm -rf $(BIN)
