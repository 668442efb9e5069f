# Conveniences for developers; the README's two commands are ./scripts/demo and ./scripts/test.
.PHONY: demo test bench fuzz chaos

demo:
	./scripts/demo

test:
	./scripts/test

bench:
	./scripts/bootstrap
	MLBRIDGE_PYTHON=$(CURDIR)/.venv/bin/python go run ./cmd/mlbridge bench --scenario noop --workers 1 --concurrency 64 --duration 20s --json

# Long fuzz run of the frame/message decoder (default 20 million executions, about 10 minutes
# here; a count, not a duration: see scripts/test, golang/go#75804).
FUZZTIME ?= 20000000x
fuzz:
	go test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) ./internal/wire

# Fault loads of docs/RELIABILITY.md: kill -9 every 500ms under load, wedged event loops, killed
# hosts; prints what held (add --json for the figures as JSON).
CHAOSTIME ?= 10s
chaos:
	./scripts/bootstrap
	MLBRIDGE_PYTHON=$(CURDIR)/.venv/bin/python go run ./cmd/mlbridge bench --scenario chaos --workers 4 --concurrency 64 --duration $(CHAOSTIME)
