# Conveniences for developers; the README's two commands are ./scripts/demo and ./scripts/test.
.PHONY: demo test bench fuzz

demo:
	./scripts/demo

test:
	./scripts/test

bench:
	./scripts/bootstrap
	MLBRIDGE_PYTHON=$(CURDIR)/.venv/bin/python go run ./cmd/mlbridge bench --scenario noop --workers 1 --concurrency 64 --duration 20s --json

# Long fuzz run of the frame/message decoder (default 10 minutes).
FUZZTIME ?= 10m
fuzz:
	go test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) ./internal/wire
