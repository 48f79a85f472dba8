# dddkit — make help lists the targets.
#
# Tests that need PostgreSQL or Kafka run through scripts/testenv.sh, which
# starts a throwaway server for each one whose TEST_* variable is unset and
# stops it afterwards. Set TEST_DATABASE_URL / TEST_KAFKA_BROKERS to reuse
# servers you already run.

SHELL := /bin/bash
GO ?= go
# Every module of the workspace: `go test ./...` at the root does not enter
# examples/authnotify, which is a module of its own.
PKGS := ./... ./examples/authnotify/...
GOLANGCI_LINT_VERSION := v2.15.0
GOLANGCI_LINT := $(CURDIR)/.cache/bin/golangci-lint-$(GOLANGCI_LINT_VERSION)
FUZZTIME ?= 60s
BENCH ?= .
BENCHTIME ?= 1s

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_\/-]+:.*## / {printf "  %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: test
test: ## Run every test with -race against real PostgreSQL and Kafka (started if needed)
	scripts/testenv.sh $(GO) test -race -count=1 -timeout 20m $(PKGS)

.PHONY: test/short
test/short: ## Run the tests that need no services (the rest skip, saying why)
	env -u TEST_DATABASE_URL -u TEST_KAFKA_BROKERS $(GO) test -count=1 $(PKGS)

.PHONY: bench
bench: ## Run the benchmarks against real services (BENCH=regexp, BENCHTIME=1s)
	TESTENV_KAFKA_JVM=kafka scripts/testenv.sh $(GO) test -run='^$$' -bench='$(BENCH)' -benchtime=$(BENCHTIME) -benchmem $(PKGS)

.PHONY: fuzz
fuzz: ## Run every fuzz target for FUZZTIME each (default 60s)
	@set -e; for pkg in $$($(GO) list $(PKGS)); do \
	  for target in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$target"; \
	    $(GO) test -run='^$$' -fuzz="^$$target\$$" -fuzztime=$(FUZZTIME) $$pkg; \
	  done; \
	done

.PHONY: lint
lint: $(GOLANGCI_LINT) ## Run gofmt, go vet and golangci-lint (pinned version) on every module
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GOLANGCI_LINT) run ./...
	cd examples/authnotify && $(GOLANGCI_LINT) run --config ../../.golangci.yml ./...

$(GOLANGCI_LINT):
	@mkdir -p $(dir $@)
	GOBIN=$(CURDIR)/.cache/bin $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
	mv $(CURDIR)/.cache/bin/golangci-lint $@

.PHONY: fmt
fmt: ## Format the code
	gofmt -w $$(git ls-files '*.go')

.PHONY: services
services: ## Start PostgreSQL and Kafka and open a shell with TEST_* set (exit to stop them)
	scripts/testenv.sh $${SHELL:-bash}

.PHONY: run
run: ## Run the example system (embedded mode unless DATABASE_URL etc. are set)
	$(GO) run ./examples/authnotify
