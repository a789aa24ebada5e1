# Two commands on a fresh machine: `make report` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
OUT ?= reports

.PHONY: report test bench lint clean fuzz
EXAMPLES ?= 1000

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -c constraints.txt -e '.[all]'
	touch $(STAMP)

report: $(STAMP)
	$(VENV)/bin/cnnref report --out $(OUT)

test: $(STAMP)
	CNNREF_REQUIRE_FRAMEWORKS=1 $(PY) -m pytest -n 2 -p no:cacheprovider

# long differential fuzzing: EXAMPLES per test, hypothesis statistics and a per-layer tally at the end
fuzz: $(STAMP)
	CNNREF_REQUIRE_FRAMEWORKS=1 HYPOTHESIS_PROFILE=fuzz CNNREF_FUZZ_EXAMPLES=$(EXAMPLES) $(PY) -m pytest tests/fuzz \
		-n 2 -p no:cacheprovider --hypothesis-show-statistics

bench: $(STAMP)
	$(PY) -m pytest benchmarks/ --benchmark-only --benchmark-autosave -p no:cacheprovider $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check reference comparisons tests benchmarks

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache .benchmarks .hypothesis
