# detect-track: `make demo` and `make test` work on a fresh machine (they create .venv here).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
SAMPLE := datasets/samples/sim_phase_contrast/video.mp4
SAMPLE_UM_PER_PX := 0.7
# the sample is simulated: the sperm-sim preset runs the simulation-trained YOLO on it

.PHONY: demo test lint clean help browser

help:
	@echo "make demo   - set up .venv (first time), run detect-track on the bundled sample"
	@echo "make test   - set up .venv (first time), run the test suite (installs chromium for"
	@echo "              the browser tests when root with apt-get; else they skip, saying why)"
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
	@echo "Open results/demo/report.html in a browser (it plays overlay.mp4, what was tracked), tracks.csv in a spreadsheet."
	@echo "Still images: results/demo-smear/report.html (six testicular cell types), results/demo-slide/report.html (head shapes); annotated/ holds the drawn boxes, annotations/ the COCO / YOLO export."

# tests/test_browser.py opens the reports in headless Chromium: install Debian's chromium
# when it is missing and we can (root + apt-get); otherwise those tests skip, saying why
# (-rs); DETECT_TRACK_REQUIRE_BROWSER=1 makes a missing browser fail them instead.
BROWSERS := chromium chromium-browser google-chrome google-chrome-stable
browser:
	@found=""; for b in $$DETECT_TRACK_CHROMIUM $(BROWSERS); do \
	  if command -v $$b >/dev/null 2>&1; then found=$$b; break; fi; done; \
	if [ -n "$$found" ]; then echo "browser tests: $$found"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "browser tests: installing chromium (apt-get)"; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } \
	    || echo "browser tests: chromium could not be installed; the browser tests will skip, saying why"; \
	else echo "browser tests: no chromium and no root/apt-get to install it; the browser tests will skip," \
	  "saying why. Install chromium or set DETECT_TRACK_CHROMIUM."; fi

test: $(STAMP) browser
	$(PY) -m pytest -q -n 2 -rs

lint: $(STAMP)
	$(VENV)/bin/ruff check detect_track tests tools

clean:
	rm -rf results .pytest_cache
