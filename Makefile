# The two commands a new user needs: `make run` and `make test`.
# Everything else here is what those two are made of.

PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU build of torch; an unpinned torch pulls a multi-GB CUDA build.
TORCH_SPEC ?= torch==2.13.0
HOST ?= 127.0.0.1
PORT ?= 8000
WORKERS ?= 1
# DEMO=false serves without the demo project and people.
DEMO ?= true
STAMP := $(VENV)/.installed

.PHONY: run test setup install db migrate encoder demo lint typecheck bench bench-scale bench-peer eval browser screenshots db-stop clean

# prepare_run refuses a non-loopback HOST without SECRET_KEY, seeds the demo, prints the banner.
run: setup
	$(BIN)/python manage.py prepare_run --host $(HOST) --port $(PORT) --workers $(WORKERS) --demo $(DEMO)
	$(BIN)/python manage.py collectstatic --noinput -v0
	@# The webhook worker runs beside the server and stops with it (Ctrl-C, a SIGTERM to
	@# make, or the server exiting); a deployment runs `manage.py deliver_webhooks` as its
	@# own process. Both in the background: a shell waiting on a foreground command runs its
	@# TERM trap only once that command ends, so `kill <make>` stopped nothing.
	$(BIN)/python manage.py deliver_webhooks & worker=$$!; \
	$(BIN)/uvicorn moss_web.asgi:application --host $(HOST) --port $(PORT) --workers $(WORKERS) & \
	server=$$!; \
	trap 'kill $$server $$worker 2>/dev/null' INT TERM; \
	wait $$server; status=$$?; \
	kill $$server $$worker 2>/dev/null; wait $$server; wait $$worker; exit $$status

test: setup browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

setup: $(STAMP) migrate encoder

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

migrate: $(STAMP)
	$(BIN)/python manage.py migrate --noinput -v0

# The ONNX export of the embedding model (cached in $MOSS_DATA_DIR/encoder; quick when it exists).
encoder: $(STAMP)
	$(BIN)/python manage.py encoder_export

demo: setup
	$(BIN)/python manage.py seed_demo

# Browser tests drive Debian's Chromium; install it when apt is at hand.
browser:
	@test -x /usr/bin/chromium || ! command -v apt-get >/dev/null || [ "$$(id -u)" != 0 ] || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy .

bench: setup
	$(BIN)/python scripts/bench.py

# Retrieval figures on the labelled set in eval/ (README, "Search quality").
eval: setup
	$(BIN)/python scripts/eval.py

# About 1M turns in their own databases (SCALE_ARGS="--sessions 10000" for a
# smaller scale, "--explain" for plans, "--reload" after a schema change).
bench-scale: setup
	nice $(BIN)/python scripts/bench_scale.py $(SCALE_ARGS)

# moss-web beside Chroma's HTTP server: Chroma gets a virtualenv of its own under .bench/.
CHROMA_SPEC ?= chromadb==1.5.9
CHROMA_VENV := .bench/chroma-venv
$(CHROMA_VENV)/.installed:
	test -x $(CHROMA_VENV)/bin/python || $(PYTHON) -m venv $(CHROMA_VENV)
	$(CHROMA_VENV)/bin/python -m pip install -q "$(CHROMA_SPEC)"
	touch $@

bench-peer: setup $(CHROMA_VENV)/.installed
	$(BIN)/python scripts/bench_peer.py

screenshots: setup browser demo
	$(BIN)/python scripts/screenshots.py

db-stop:
	$(BIN)/python -m moss_web.embedded_pg stop

clean: db-stop
	rm -rf $(VENV) .moss staticfiles
