# The two commands of the README are `make demo` and `make test`; both set up
# everything they need (hack/testbed up installs packages and starts daemons).
SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(PATH)

GO      ?= go
# The release as `make dist` names it: git describe --tags, or 0.0.0-N-gHASH
# when there is no tag (hack/dist says how).
VERSION ?= $(shell hack/dist version)
COMMIT  ?= $(shell git rev-parse --verify -q HEAD 2>/dev/null || echo unknown)
DATE    ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
PKG     := reconciler.dev/reconciler
LDFLAGS := -X $(PKG)/internal/version.Version=$(VERSION) -X $(PKG)/internal/version.Commit=$(COMMIT) -X $(PKG)/internal/version.Date=$(DATE)
BIN     := bin/reconciler
E2E_TIMEOUT ?= 50m

.PHONY: build dist test test-unit test-e2e test-faults testbed-up testbed-down demo bench lint fuzz clean

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/reconciler

# What we ship, into dist/: static binaries for linux/amd64 and arm64, a .deb
# for each, the image reconciler:VERSION (built by the local docker, saved
# as a tar) and SHA256SUMS. DIST_ARCHES, DIST_IMAGE=0, VERSION override.
dist:
	VERSION=$(VERSION) hack/dist

# Everything: static checks, unit tests (race detector on), the testbed, then
# the end-to-end suite against it. Fails if any part fails.
test: lint testbed-up test-unit test-e2e

test-unit:
	$(GO) test -race -count=1 ./...

testbed-up:
	hack/testbed up

testbed-down:
	hack/testbed down

# End-to-end tests talk to the real testbed; they fail (never skip) when a part
# is missing. -p 1: they share one dockerd, one systemd and one RabbitMQ.
test-e2e: build
	RECONCILER_BIN=$(CURDIR)/$(BIN) $(GO) test -tags e2e -count=1 -p 1 -timeout $(E2E_TIMEOUT) ./test/e2e/...

# The fault-injection suite alone (it is part of test-e2e, so of make test):
# dockerd killed mid-flip, systemd restarted mid-pass, a full state dir, a
# corrupt state file, hangs (dockerd and the system bus frozen, a silent git
# server, a cut link to git), and a soak (SOAK=30m E2E_TIMEOUT=60m make test-faults
# for a long one).
test-faults: build testbed-up
	RECONCILER_BIN=$(CURDIR)/$(BIN) $(GO) test -tags e2e -count=1 -p 1 -timeout $(E2E_TIMEOUT) -run 'TestFault' -v ./test/e2e/...

demo: build testbed-up
	hack/demo

# Speed, calls and memory, each measured side by side with what operators do
# today (hack/bench/runbook-*.sh), on the testbed; about 20 minutes. Prints one
# table and rewrites the results section of docs/BENCHMARKS.md and the plots
# docs/bench-flip.png and docs/bench-services.png. BENCH_FLAGS, e.g. -scenarios 3,5 -pairs 5.
BENCH_FLAGS ?=
bench: build testbed-up
	$(GO) run ./hack/bench -doc docs/BENCHMARKS.md -plot docs/bench $(BENCH_FLAGS)

# Every fuzz target of the repository for FUZZTIME each, one at a time
# (-parallel 1: the machine is shared), printing per target the executions
# and the result; fails if any target fails. Targets are found by their
# declaration, so a new one is fuzzed without editing this file.
FUZZTIME ?= 60s
fuzz:
	@FUZZTIME=$(FUZZTIME) GO=$(GO) hack/fuzz

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags e2e ./test/e2e/...

clean:
	rm -rf bin dist
