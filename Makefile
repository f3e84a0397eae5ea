# detect-track: `make demo` and `make test` work on a fresh machine (they create .venv here).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
SAMPLE := datasets/samples/sim_phase_contrast/video.mp4
SAMPLE_UM_PER_PX := 0.7
# the sample is simulated: the sperm-sim preset runs the simulation-trained YOLO on it

.PHONY: demo test lint clean help

help:
	@echo "make demo   - set up .venv (first time), run detect-track on the bundled sample"
	@echo "make test   - set up .venv (first time), run the test suite"
	@echo "make lint   - ruff"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[ml,batch,dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/detect-track $(SAMPLE) --config sperm-sim --um-per-px $(SAMPLE_UM_PER_PX) --out results/demo --overlay
	$(VENV)/bin/detect-track datasets/samples/smear_testicular/smear.jpg --config testicular --um-per-px 0.55 --out results/demo-smear
	$(VENV)/bin/detect-track datasets/samples/slide_stained/slide.jpg --config sperm-slide --um-per-px 0.1 --out results/demo-slide
	@echo "Open results/demo/report.html in a browser, tracks.csv in a spreadsheet; overlay.mp4 shows what was tracked."
	@echo "Still images: results/demo-smear/counts.csv (six testicular cell types), results/demo-slide/detections.csv; annotated/ holds the drawn boxes."

test: $(STAMP)
	$(PY) -m pytest -q -n 2

lint: $(STAMP)
	$(VENV)/bin/ruff check detect_track tests tools

clean:
	rm -rf results .pytest_cache
