# Two entry points for a fresh machine: `make build` (the whole pipeline) and `make test` (lint + test suite).
# Both create .venv and install the project into it first.

VENV ?= .venv
SHARED_CIFAR := $(abspath ../shared/datasets/cifar10)
ifeq ($(EXPORTKIT_DATA),)
ifneq ($(wildcard $(SHARED_CIFAR)/train),)
export EXPORTKIT_DATA := $(SHARED_CIFAR)
endif
endif

.PHONY: build test install clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e '.[test]'
	touch $@

build: install
	$(VENV)/bin/exportkit build --out artifacts

test: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/python -m pytest -q

clean:
	rm -rf $(VENV)
	git clean -fdX artifacts
