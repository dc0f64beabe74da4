# Daily commands. Every target installs what it needs first (a virtual environment in $(VENV)).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PROFILE ?= quick
DATA_ROOT ?=
REPORT_ARGS := --profile $(PROFILE) $(if $(DATA_ROOT),--data-root $(DATA_ROOT))
# every template the report executes, from the one chapter list (mixlib/chapters/contents.py); expanded
# when a recipe runs, so after `install`
NOTEBOOKS = $(shell $(PY) -m mixlib chapters --notebooks)

.PHONY: install browser report test lint clean

install: $(VENV)/.installed

# torch/torchvision come from PyPI as CUDA builds (about 5 GB, they run on the CPU as well).
$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

# Debian's Chromium and its driver, for the browser test of the built book (tests/test_browser.py);
# nothing happens where both are on the PATH. Installing them needs root (CI runs as root) or sudo.
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; }

report: install
	$(PY) -m mixlib report $(REPORT_ARGS)

# unit tests, the report smoke build read in a headless browser, then every template notebook with its
# default parameters (train.ipynb first: the summary templates read the run it makes)
test: install browser
	$(PY) -m pytest tests $(NOTEBOOKS) --nbval-lax --nbval-current-env -p no:cacheprovider --durations=20

lint: install
	$(VENV)/bin/ruff check mixlib tests
	$(VENV)/bin/ruff format --check mixlib tests

clean:
	rm -rf _build book/generated runs .cache
