# Two commands matter: `make demo` (the tutorial on the embedded sample) and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export OMP_NUM_THREADS ?= 2

.PHONY: install demo test notebooks lab clean walkthrough walkthrough-site browser-test bench

$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps paddledet==2.6.0
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

install: $(VENV)/.installed

demo: install
	$(PY) -m tutorial_lib demo --output output/demo --dataset_dir data/remote_sense_sample

# two pytest-xdist workers, each running whole test files (module fixtures are built once) on one core each
test: install
	$(PY) -m pytest -q -n 2 --dist loadfile --durations=60

# The tutorial executed with the reader's parameters (01 -> 07; 05's model feeds 06 and 07): executed notebooks with
# outputs and widget state in docs/walkthrough/, a static site in output/walkthrough_site/ (hours on 2 CPU cores).
walkthrough: install
	$(PY) docs/walkthrough/build.py

# Only the static site, from the committed docs/walkthrough/*.ipynb (seconds).
walkthrough-site: install
	$(PY) docs/walkthrough/build.py --site-only

# Every benchmark rerun, its tables written into docs/benchmarks.md (hours on 2 CPU cores; a quiet machine).
bench: install
	$(PY) benchmarks/run_all.py

# Every notebook in JupyterLab driven by Debian's chromium (screenshots in output/browser/).
browser-test: install
	$(PY) -m pytest -q tests/test_browser.py

lab: install
	$(VENV)/bin/jupyter lab notebooks/

clean:
	rm -rf output data/remote_sense_sample .pytest_cache
