# Two entry points for a fresh machine: `make build` (the whole pipeline) and `make test` (lint, layer contracts,
# test suite).
# Both create .venv and install the project into it first, every dependency at the version and hash that
# requirements/lock.txt records, so a release published upstream cannot change what a fresh clone runs.
# `make lock` re-resolves the lock on purpose; `make try-latest` tries today's releases in a separate venv.

VENV ?= .venv
LOCK := requirements/lock.txt
PIP_TOOLS := pip-tools==7.7.0
SHARED_CIFAR := $(abspath ../shared/datasets/cifar10)
ifeq ($(EXPORTKIT_DATA),)
ifneq ($(wildcard $(SHARED_CIFAR)/train),)
export EXPORTKIT_DATA := $(SHARED_CIFAR)
endif
endif

.PHONY: build test install clean cpp js emulators lock try-latest

install: $(VENV)/.installed

# --no-deps: the lock already names every package; --no-build-isolation builds exportkit with the locked
# setuptools rather than whatever release an isolated build would fetch. pip check proves the set is consistent.
$(VENV)/.installed: pyproject.toml $(LOCK)
	python3 -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --require-hashes --no-deps -r $(LOCK)
	$(VENV)/bin/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(VENV)/bin/python -m pip check
	touch $@

# Re-resolve the lock from pyproject.toml and requirements/pins.in (run after changing either, or to upgrade).
lock:
	python3 -m venv .venv-lock
	.venv-lock/bin/python -m pip install --quiet $(PIP_TOOLS)
	.venv-lock/bin/pip-compile --quiet --upgrade --generate-hashes --allow-unsafe --strip-extras --extra test \
		--no-emit-index-url --no-emit-find-links --output-file $(LOCK) pyproject.toml requirements/pins.in

# Today's releases, unpinned, in .venv-latest: lint + suite, and what moved against the lock, in docs/latest.md.
try-latest:
	requirements/try_latest.sh docs/latest.md

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

# qemu-user runs the tests' emulated CPUs (an x86-64 without VNNI for int8). Installed from Debian's packages when
# make runs as root; elsewhere the tests that need it are skipped and say so.
emulators:
	@if command -v qemu-x86_64 >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user) >/dev/null; \
	else echo "qemu-user not found and not root: the emulated-CPU tests will be skipped"; fi

test: install js emulators
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/python -m pytest -q

clean:
	rm -rf $(VENV)
	git clean -fdX artifacts
