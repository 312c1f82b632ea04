# Two commands: `make run` and `make test`. Each sets up what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_INSTALL := DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y --no-install-recommends

.PHONY: run test lint typecheck pytest bench clean system-deps

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

# Set up, migrate and start Veil on its embedded default (SQLite in ./veil.db, one process).
run: $(STAMP)
	$(BIN)/veil db upgrade
	$(BIN)/veil serve

# Debian packages the tests drive: SIPp plays the SIP trunk and the phones; rtpengine
# carries the media (Veil starts its own, userspace only); lame encodes MP3 recordings; sox
# turns prompt URLs into 8 kHz WAVs, reading mp3 only with libsox-fmt-mp3 (hence the grep).
system-deps:
	command -v sipp >/dev/null || $(APT_INSTALL) sip-tester \
		|| ($(SUDO) apt-get update && $(APT_INSTALL) sip-tester)
	command -v rtpengine >/dev/null || $(APT_INSTALL) rtpengine-daemon \
		|| ($(SUDO) apt-get update && $(APT_INSTALL) rtpengine-daemon)
	command -v lame >/dev/null || $(APT_INSTALL) lame \
		|| ($(SUDO) apt-get update && $(APT_INSTALL) lame)
	sox -h 2>/dev/null | grep -qw mp3 || $(APT_INSTALL) sox libsox-fmt-mp3 \
		|| ($(SUDO) apt-get update && $(APT_INSTALL) sox libsox-fmt-mp3)

# Set up, then lint, type-check and run the tests (SQLite and the PostgreSQL on 127.0.0.1:5432).
test: $(STAMP) system-deps lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check veil tests bench
	$(BIN)/ruff format --check veil tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP) system-deps
	$(BIN)/pytest -q

# Load benchmarks (not part of make test); results go to docs/benchmarks.md.
bench: $(STAMP) system-deps
	command -v wrk >/dev/null || $(APT_INSTALL) wrk || ($(SUDO) apt-get update && $(APT_INSTALL) wrk)
	$(BIN)/python bench/api.py
	$(BIN)/python bench/breakdown.py
	$(BIN)/python bench/sip.py
	$(BIN)/python bench/media.py
	$(BIN)/python bench/webhooks.py
	$(BIN)/python bench/allocation.py
	$(BIN)/python bench/pool.py --seeds 20

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
