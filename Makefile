PYTHON ?= python3
PIP ?= $(PYTHON) -m pip

.PHONY: install demo test test-e2e bench lint up down

install:
	$(PIP) install -q -e '.[all]'
	$(PYTHON) scripts/ensure_redis.py

demo: install
	$(PYTHON) -m lamina.cli demo

test: install
	$(PYTHON) -m pytest -q

test-e2e: install
	$(PYTHON) -m pytest -q -m "e2e or slow"

bench: install
	$(PYTHON) bench/run.py

lint:
	ruff check .

up:
	docker-compose up -d

down:
	docker-compose down
