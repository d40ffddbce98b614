# godwit — see README.md. `make demo` and `make test` install what is
# missing (apt-get, Go module proxy), build and run.
export PATH := /usr/local/go/bin:$(PATH)
GO ?= go
BIN := bin
DEMO_DIR ?= $(HOME)/.godwit/demo

.PHONY: screenshots all build deps deps-test demo test test-short test-faults fuzz bench deb clean fmt vet openapi

all: build

build:
	$(GO) build -o $(BIN)/godwit ./cmd/godwit
	CGO_ENABLED=0 $(GO) build -o $(BIN)/godwit-guest ./cmd/godwit-guest

deps:
	@scripts/install-deps.sh

# deps, and what only the tests need (Chromium for the dashboard's test).
deps-test:
	@GODWIT_DEPS=test scripts/install-deps.sh

# A three-host cluster on this machine, a real VM booted on it.
demo: deps build
	@DEMO_DIR=$(DEMO_DIR) scripts/demo.sh

# Everything, including real-QEMU integration tests and the PostgreSQL
# store suite, with the race detector. One package at a time (-p 1): the
# real-QEMU packages each run TCG guests, and two of them at once on a
# 2-core machine starve the guests.
test: deps-test build
	@pg=$$(scripts/test-postgres.sh | tail -n 1) && \
	GODWIT_TEST_POSTGRES="$$pg" GODWIT_TEST_BIN=$(CURDIR)/$(BIN) \
	$(GO) test -race -count=1 -p 1 -timeout 25m ./...
	@$(MAKE) --no-print-directory fuzz FUZZTIME=$(TEST_FUZZTIME)

# Every fuzz target fuzzed for FUZZTIME (scripts/fuzz.sh); their corpora
# in testdata/fuzz run with every `go test`, and a crasher found is
# written there and fails the run. make test fuzzes each for
# TEST_FUZZTIME only: building the instrumented test binaries is most of
# the step's time on a fresh machine, and the suite must stay well under
# 30 minutes on two cores.
FUZZTIME ?= 5s
TEST_FUZZTIME ?= 1s
fuzz:
	@GO=$(GO) FUZZTIME=$(FUZZTIME) scripts/fuzz.sh

# The crash-safety matrix (docs/reliability.md): the controller, agents
# and QEMUs killed mid-migration, the migration link cut, and the
# 2-minute load test with controller kills. The tables of this run
# replace those in docs/reliability.md.
FAULTS_OUT ?= $(CURDIR)/bin/faults
FAULT_TESTS := TestControllerKilled|TestSplitBrainFencedQEMU|TestControllerLoadWithKills|TestAgentKilledMidMigration|TestAgentRestartKeepsVMQEMU|TestLiveMigrationSourceKilledQEMU|TestLiveMigrationDestinationKilledQEMU|TestLiveMigrationNetworkCutQEMU|TestEvacuateQEMU|TestDrainQEMU
test-faults: deps build
	@rm -rf $(FAULTS_OUT) && mkdir -p $(FAULTS_OUT)
	GODWIT_FAULTS_FULL=1 GODWIT_FAULTS_OUT=$(FAULTS_OUT) GODWIT_TEST_BIN=$(CURDIR)/$(BIN) \
	$(GO) test -race -count=1 -p 1 -timeout 40m -v -run '$(FAULT_TESTS)' ./internal/e2e/
	scripts/faults-tables.sh $(FAULTS_OUT) docs/reliability.md

# Unit tests only: what `go test ./...` runs on a machine with nothing
# installed.
test-short:
	$(GO) test -short ./...

# The benchmark of issue 5: a real cluster on this machine, results in
# docs/benchmarks.md. Needs root (network namespaces, tc) and a quiet
# machine; BENCH_FLAGS passes flags, e.g. BENCH_FLAGS=-quick.
bench: deps build
	$(GO) build -o $(BIN)/godwit-bench ./cmd/godwit-bench
	$(BIN)/godwit-bench -bin $(BIN) $(BENCH_FLAGS)

# docs/openapi.json, the REST API's OpenAPI document, generated from
# api.Routes, api's doc comments and the controller's policy table (the
# controller serves the same at /openapi.json); TestOpenAPICommitted and
# TestDescriptionsCommitted fail when it is stale.
openapi:
	$(GO) generate ./internal/openapi/ ./internal/controller/

# The Debian package, built with dpkg-deb into bin/ (scripts/deb.sh):
# the binary, the systemd units, default configs, the godwit user.
# docs/deploy.md says how to install it on three hosts.
deb:
	@GO=$(GO) OUT=$(BIN) scripts/deb.sh

fmt:
	gofmt -w $$(git ls-files '*.go')

vet:
	$(GO) vet ./...

clean:
	rm -rf $(BIN)

# The dashboard's screenshots in docs/img (docs/dashboard.md, README):
# TestDashboardQEMU on a real-QEMU cluster, a live migration and a
# drain caught while they run.
SHOTS := $(CURDIR)/bin/screenshots
screenshots: deps-test build
	@rm -rf $(SHOTS) && mkdir -p $(SHOTS) docs/img
	GODWIT_SCREENSHOTS=$(SHOTS) GODWIT_TEST_BIN=$(CURDIR)/$(BIN) \
	$(GO) test -count=1 -run 'TestDashboardQEMU$$' ./internal/e2e/
	cp $(SHOTS)/dashboard-qemu-1-migration.png docs/img/dashboard-migration.png
	cp $(SHOTS)/dashboard-qemu-2-migrated.png docs/img/dashboard-migrated.png
	cp $(SHOTS)/dashboard-qemu-3-drain-plan.png docs/img/dashboard-drain-plan.png
	cp $(SHOTS)/dashboard-qemu-4-drain.png docs/img/dashboard-drain.png
