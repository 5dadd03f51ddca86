# Liminal — make targets behind the README's commands.
# Caches live under ~/.cache/liminal so repeated runs are fast; nothing relies on them.
CACHE      ?= $(HOME)/.cache/liminal
export GOCACHE    ?= $(CACHE)/go-build
export GOMODCACHE ?= $(CACHE)/go-mod
export GOFLAGS    ?= -buildvcs=false
# DuckDB's Arrow interface (duckdb-go-bindings) is compiled only with this tag.
override GOFLAGS  += -tags=duckdb_arrow
GO         ?= go
BIN        := bin/liminal
VERSION    ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
EXAMPLE    := examples/quickstart
ROWS       ?= 1000000

.PHONY: all build example test test-unit test-integration test-short vet fmt-check fuzz fixtures-check bench compare image deploy-check clean

all: build

build: ## build bin/liminal
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/liminal

example: build ## generate the example data if needed and run the quick-start pipeline
	@test -f $(EXAMPLE)/data/customers/customers.parquet || ./$(BIN) gen --dir $(EXAMPLE)/data --rows $(ROWS)
	cd $(EXAMPLE) && ../../$(BIN) run pipeline.yml

# Every test runs once: the unit tests skip the TestXxxIntegration tests,
# which test-integration runs against real servers.
test: vet fmt-check test-unit test-integration ## run every test (the README's test command)

# The tests need the reference Python environment (scikit-learn, xgboost,
# lightgbm, onnxruntime, pyarrow from PyPI; scripts/pyenv.sh) and
# libonnxruntime (scripts/onnxruntime.sh), both cached in ~/.cache/liminal.
test-unit: ## every test but the connectors' integration tests
	LIMINAL_PYTHON=$${LIMINAL_PYTHON:-$$(scripts/pyenv.sh)} \
	LIMINAL_ONNXRUNTIME_LIB=$${LIMINAL_ONNXRUNTIME_LIB:-$$(scripts/onnxruntime.sh)} \
	$(GO) test -count=1 -timeout 25m -skip 'Integration$$' ./...

# One package at a time: install (cached in ~/.cache/liminal) and start its
# servers (PostgreSQL, HiveServer2, Trino and PrestoDB), run its
# TestXxxIntegration tests, stop the servers. A server that cannot be
# installed or started fails the target; nothing is skipped.
test-integration: ## the connectors' integration tests against real servers
	GO="$(GO)" bash scripts/test-integration.sh

test-short: ## quick tests only (no servers)
	$(GO) test -short -skip 'Integration$$' ./...

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

FUZZTIME ?= 10s
fuzz: ## run every fuzz target briefly (scripts/fuzz.sh)
	GO="$(GO)" FUZZTIME=$(FUZZTIME) bash scripts/fuzz.sh

# The scripts that train the model fixtures and record the reference
# libraries' own predictions (pinned versions from PyPI). Rerunning them must
# reproduce the committed files byte for byte; a difference is drift in a
# reference library or a script, to be reviewed before the fixtures change.
# The .onnx files are left out of the comparison: skl2onnx does not write
# them byte-identically twice (the predictions they give must still match).
FIXTURE_SCRIPTS := infer/testdata/xgboost/make_fixtures.py infer/testdata/lightgbm/make_fixtures.py \
	infer/testdata/linear/make_fixtures.py infer/onnx/testdata/make_fixtures.py

fixtures-check: ## rerun the model-fixture scripts and fail if any committed fixture changed
	@set -e; for s in $(FIXTURE_SCRIPTS); do echo "== $$s"; python3 $$s > /dev/null; done
	git diff --exit-code --stat -- infer/testdata infer/onnx/testdata ':!*.onnx'

bench: ## Go benchmarks (1M rows, generated and cached)
	$(GO) test -run '^$$' -bench . -benchtime 3x -count 3 ./benchmarks/

compare: ## side by side with DuckDB 2.0 alone, Polars and PySpark (10M rows; benchmarks/compare.sh)
	bash benchmarks/compare.sh

image: ## the container image (Dockerfile; needs Docker with BuildKit)
	docker build --build-arg VERSION=$(VERSION) -t liminal:$(VERSION) -t liminal:latest .

# Validates deploy/k8s with kubeconform (built with go install) against the
# Kubernetes JSON schemas of the kubernetes-validate wheel (PyPI), both cached
# in ~/.cache/liminal, and checks the manifests' wiring; part of `make test`.
deploy-check: ## validate the Kubernetes manifests
	$(GO) test -count=1 ./deploy/

clean:
	rm -rf bin $(EXAMPLE)/out $(EXAMPLE)/data
