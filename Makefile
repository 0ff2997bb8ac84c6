# Two entry points for a fresh machine: `make build` (the whole pipeline) and `make test` (lint + test suite).
# Both create .venv and install the project into it first.

VENV ?= .venv
SHARED_CIFAR := $(abspath ../shared/datasets/cifar10)
ifeq ($(EXPORTKIT_DATA),)
ifneq ($(wildcard $(SHARED_CIFAR)/train),)
export EXPORTKIT_DATA := $(SHARED_CIFAR)
endif
endif

.PHONY: build test install clean cpp js

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e '.[test]'
	touch $@

build: install
	$(VENV)/bin/exportkit build --out artifacts

# The C++ consumer (examples/cpp) against the libtorch inside the installed torch wheel.
cpp: install
	PYTHON=$(VENV)/bin/python examples/cpp/build.sh

# The JavaScript consumer's onnxruntime-node, when npm is present (its CPU binaries ship in the npm package; the
# optional CUDA download is skipped). Without npm, the JS test is skipped and says why.
js:
	@if command -v npm >/dev/null; then cd examples/js && ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund --loglevel=error; \
	else echo "npm not found: the JavaScript consumer test will be skipped"; fi

test: install js
	$(VENV)/bin/ruff check .
	$(VENV)/bin/python -m pytest -q

clean:
	rm -rf $(VENV)
	git clean -fdX artifacts
