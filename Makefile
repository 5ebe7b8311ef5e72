PYTHON ?= python3
PIP ?= $(PYTHON) -m pip

.PHONY: install demo test test-e2e soak bench lint up down

install:
	$(PIP) install -q -e '.[all]'
	$(PYTHON) scripts/ensure_redis.py

demo: install
	$(PYTHON) -m lamina.cli demo

test: install
	$(PYTHON) -m pytest -q

test-e2e: install
	$(PYTHON) -m pytest -q -m "e2e or slow"

soak: install
	LAMINA_SOAK=1 LAMINA_SOAK_OUT=$${LAMINA_SOAK_OUT:-build/soak} $(PYTHON) -m pytest -q -s -m soak tests/chaos/test_soak.py

bench: install
	$(PYTHON) bench/run.py --coretype both

lint:
	ruff check .

up:
	docker-compose up -d

down:
	docker-compose down
