# Every target creates or reuses .venv itself: on a fresh machine `make run` and `make test`
# are the whole set-up.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# checkov pins exact versions of shared libraries (packaging<24, boto3==...) that would
# downgrade the dev set, so it lives in a venv of its own (deploy/tools-requirements.txt).
TOOLS       := .venv-tools
TOOLS_STAMP := $(TOOLS)/.installed
# The accuracy peer (statsforecast) requires pandas<3 while the project runs pandas 3: it lives
# in a venv of its own (scripts/peer-requirements.txt) and runs as a subprocess of
# scripts.accuracy (scripts/accuracy_peer.py).
PEER       := .venv-peer
PEER_STAMP := $(PEER)/.installed

.DEFAULT_GOAL := help
.PHONY: help venv tools peer accuracy run test test-fast lint bench soak concurrency clean stack-up stack-down image-tools image-test

help:
	@echo "make run    start the service on its embedded defaults"
	@echo "            (make run DATA=<parquet> MODEL=<artifact>: replay that file with that model)"
	@echo "make test   lint + the whole test suite (unit, integration, concurrency)"
	@echo "make image-test  build the image and run the pod with Podman (root: apt, Podman)"
	@echo "make lint   ruff + mypy --strict"
	@echo "make accuracy  the accuracy table of docs/forecasting.md against baselines and peers"
	@echo "make system-tools  promtool for the alert checks, chromium for the /docs browser test"
	@echo "            (Debian's prometheus and chromium packages, as root)"
	@echo "make docs-screenshot  docs/img/docs-page.png from the /docs browser test"
	@echo "make bench  benchmarks; JSON into bench/results/"
	@echo "make bench-tools  wrk, the C load generator of the throughput ceilings (apt, root)"
	@echo "make bench-redis  install redis-server (apt) for the Redis baseline of make bench"
	@echo "make load   Locust against a running service (make run); reports into reports/"
	@echo "make soak   long concurrency and fault runs (marker soak; make test leaves them out)"
	@echo "make concurrency  the CI form of the concurrency suite alone"
	@echo "            (soak and concurrency append their figures to reports/concurrency.jsonl)"
	@echo "make stack-up / stack-down  local Kafka + S3 on loopback (scripts/stack.py)"

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

$(TOOLS_STAMP): deploy/tools-requirements.txt
	@test -x $(TOOLS)/bin/python || $(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --upgrade pip
	$(TOOLS)/bin/python -m pip install --quiet -r deploy/tools-requirements.txt
	@touch $(TOOLS_STAMP)

tools: $(TOOLS_STAMP)

$(PEER_STAMP): scripts/peer-requirements.txt
	@test -x $(PEER)/bin/python || $(PYTHON) -m venv $(PEER)
	$(PEER)/bin/python -m pip install --quiet --upgrade pip
	$(PEER)/bin/python -m pip install --quiet -r scripts/peer-requirements.txt
	@touch $(PEER_STAMP)

peer: $(PEER_STAMP)

# The accuracy table of docs/forecasting.md, docs/accuracy.json and docs/img/forecast-*.png.
accuracy: $(STAMP) $(PEER_STAMP)
	$(PY) -m scripts.accuracy

# make run DATA=<parquet> MODEL=<artifact>: replay that file, served by that model.
run: $(STAMP)
	$(if $(DATA),RUN_DATA='$(DATA)') $(if $(MODEL),MODEL_PATH='$(MODEL)') $(PY) -m scripts.run_local

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: lint $(TOOLS_STAMP) $(PEER_STAMP) system-tools
	$(VENV)/bin/pytest

# Debian packages some tests need, installed here when missing and we are root; otherwise
# this says why those tests will be skipped:
#   prometheus: promtool checks and unit-tests deploy/prometheus/alerts.yaml
#               (tests/deploy/test_alerts.py);
#   chromium:   loads /docs and runs its "Try it out" (tests/webapp/test_docs_browser.py).
.PHONY: system-tools
system-tools:
	@if command -v promtool >/dev/null; then \
	  promtool --version | head -n 1; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "promtool is missing: installing Debian's prometheus package"; \
	  apt-get install -y --no-install-recommends prometheus \
	  || { apt-get update && apt-get install -y --no-install-recommends prometheus; }; \
	else \
	  echo "promtool is missing and installing Debian's prometheus package needs root and" \
	    "apt-get: the promtool checks of deploy/prometheus will be skipped"; \
	fi
	@if command -v chromium >/dev/null; then \
	  chromium --version 2>/dev/null; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "chromium is missing: installing Debian's chromium package"; \
	  apt-get install -y --no-install-recommends chromium \
	  || { apt-get update && apt-get install -y --no-install-recommends chromium; }; \
	else \
	  echo "chromium is missing and installing Debian's chromium package needs root and" \
	    "apt-get: the browser test of /docs will be skipped"; \
	fi

# docs/img/docs-page.png: /docs after its "Try it out" on /predict, taken by the browser test.
.PHONY: docs-screenshot
docs-screenshot: $(STAMP) system-tools
	DOCS_SCREENSHOT=$(CURDIR)/docs/img/docs-page.png \
	  $(VENV)/bin/pytest -q -p no:cacheprovider tests/webapp/test_docs_browser.py

test-fast: $(STAMP)
	$(VENV)/bin/pytest -m "not integration and not concurrency and not slow and not server"

# The image and the pod, for real (tests/deploy/image_check.py): Podman, Buildah, mmdebstrap and
# runc are Debian packages, installed here when missing (root, which CI has, or sudo). The base
# image's root filesystem is cached in .cache/image/.
IMAGE_TOOLS := podman buildah mmdebstrap runc
image-tools:
	@missing=$$(for t in $(IMAGE_TOOLS); do command -v $$t >/dev/null || echo $$t; done); \
	if [ -n "$$missing" ]; then \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  export DEBIAN_FRONTEND=noninteractive; \
	  $$SUDO apt-get install -y --no-install-recommends $(IMAGE_TOOLS) \
	  || { $$SUDO apt-get update && $$SUDO apt-get install -y --no-install-recommends $(IMAGE_TOOLS); }; \
	fi

image-test: $(STAMP) image-tools
	$(PY) -m tests.deploy.image_check

stack-up: $(STAMP)
	$(PY) -m scripts.stack up

stack-down: $(STAMP)
	$(PY) -m scripts.stack down

bench: $(STAMP) bench-tools
	$(PY) -m bench

# wrk (Debian package) measures the throughput ceilings of bench.compare next to Locust: a
# generator in C, so the figure is the server's, not the generator's. Installed here when
# missing and we are root; otherwise this says why the wrk figures will be missing.
.PHONY: bench-tools
bench-tools:
	@if command -v wrk >/dev/null; then \
	  echo "wrk: $$(command -v wrk)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "wrk is missing: installing Debian's wrk package"; \
	  apt-get install -y --no-install-recommends wrk \
	  || { apt-get update && apt-get install -y --no-install-recommends wrk; }; \
	else \
	  echo "wrk is missing and installing Debian's wrk package needs root and apt-get:" \
	    "make bench reports Locust's throughput only, without the wrk ceilings"; \
	fi

# The Redis-backed baseline of bench.compare needs redis-server (Debian package, BSD-3 in
# bookworm's 7.0); without it that baseline is skipped with a message. Needs root or sudo.
.PHONY: bench-redis
bench-redis:
	@command -v redis-server >/dev/null || { \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get install -y --no-install-recommends redis-server \
	  || { $$SUDO apt-get update && $$SUDO apt-get install -y --no-install-recommends redis-server; }; }
	@redis-server --version

# Headless Locust run against a service already running (`make run` in another terminal).
# Override LOAD_HOST/LOAD_USERS/LOAD_TIME/LOAD_SHAPE; SLO gates come from LOCUST_* variables
# (README, "Load testing"); the exit status says whether they passed.
LOAD_HOST  ?= http://127.0.0.1:8000
LOAD_USERS ?= 20
LOAD_TIME  ?= 60s
LOAD_SHAPE ?= steady
.PHONY: load
load: $(STAMP)
	@mkdir -p reports
	$(VENV)/bin/locust -f locustfiles --headless --only-summary --host $(LOAD_HOST) \
		-u $(LOAD_USERS) -r $(LOAD_USERS) -t $(LOAD_TIME) --shape $(LOAD_SHAPE) \
		--csv reports/load --html reports/load.html

# The only commands that write the concurrency figures the README quotes into reports/.
CONCURRENCY_REPORT := $(CURDIR)/reports/concurrency.jsonl
soak: $(STAMP)
	CONCURRENCY_REPORT=$(CONCURRENCY_REPORT) \
	  $(VENV)/bin/pytest -m soak --override-ini="addopts=-ra --strict-markers" tests

concurrency: $(STAMP)
	CONCURRENCY_REPORT=$(CONCURRENCY_REPORT) \
	  $(VENV)/bin/pytest -m "concurrency and not soak" tests/concurrency

clean:
	rm -rf $(VENV) $(TOOLS) $(PEER) .pytest_cache .mypy_cache .ruff_cache .hypothesis
