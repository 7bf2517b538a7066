# The two commands of the README are `make demo` and `make test`; both set up
# everything they need (hack/testbed up installs packages and starts daemons).
SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(PATH)

GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --verify -q HEAD 2>/dev/null || echo unknown)
PKG     := reconciler.dev/reconciler
LDFLAGS := -X $(PKG)/internal/version.Version=$(VERSION) -X $(PKG)/internal/version.Commit=$(COMMIT)
BIN     := bin/reconciler
E2E_TIMEOUT ?= 30m

.PHONY: build test test-unit test-e2e testbed-up testbed-down demo bench lint fuzz clean

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/reconciler

# Everything: static checks, unit tests (race detector on), the testbed, then
# the end-to-end suite against it. Fails if any part fails.
test: lint test-unit testbed-up test-e2e

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

demo: build testbed-up
	hack/demo

bench: build testbed-up
	@echo "make bench: not yet (issue 8)"; exit 1

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags e2e ./test/e2e/...

clean:
	rm -rf bin
