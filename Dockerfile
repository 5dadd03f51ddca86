# syntax=docker/dockerfile:1
#
# The liminal image: one binary for every role (coordinator, worker, run,
# serve, scheduler...). Build with BuildKit (the default of Docker >= 23):
#
#   docker build --build-arg VERSION=$(git describe --tags --always --dirty) -t liminal .
#
# Build and runtime stages use the same Debian release (DEBIAN) so that the
# binary runs on the glibc it was linked against; bookworm and trixie both work.
ARG GO_VERSION=1.26
ARG DEBIAN=bookworm
ARG PYTHON_VERSION=3.12

# ---- build: cgo is required (DuckDB 2.0 is linked in statically from the
# prebuilt libduckdb.a of duckdb-go-bindings); the Debian golang image ships
# gcc, g++ and libc6-dev.
FROM golang:${GO_VERSION}-${DEBIAN} AS build
WORKDIR /src
ENV CGO_ENABLED=1 \
    GOFLAGS="-buildvcs=false -tags=duckdb_arrow" \
    GOCACHE=/root/.cache/go-build \
    GOMODCACHE=/go/pkg/mod
# Modules first, so that a source change does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download
COPY . .
# The version printed by `liminal version` (the Makefile passes git describe;
# .git is not in the build context).
ARG VERSION=dev
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/liminal ./cmd/liminal \
 && /out/liminal version

# ---- onnxruntime: libonnxruntime for ONNX models (infer/onnx dlopens it at
# run time and finds it in /usr/local/lib), taken from the onnxruntime wheel
# on PyPI as scripts/onnxruntime.sh does. Same version as that script.
FROM python:${PYTHON_VERSION}-slim-${DEBIAN} AS onnxruntime
ARG ONNXRUNTIME_VERSION=1.31.1
RUN --mount=type=cache,target=/root/.cache/pip \
    python -m pip download --disable-pip-version-check --no-deps --only-binary=:all: \
        --dest /wheels "onnxruntime==${ONNXRUNTIME_VERSION}" \
 && mkdir -p /out \
 && python -c 'import glob, sys, zipfile; lib = "libonnxruntime.so." + sys.argv[1]; \
z = zipfile.ZipFile(glob.glob("/wheels/onnxruntime-*.whl")[0]); \
open("/out/" + lib, "wb").write(z.read("onnxruntime/capi/" + lib))' "${ONNXRUNTIME_VERSION}" \
 && chmod 0755 /out/libonnxruntime.so.*

# ---- runtime: the binary needs libc, libm, libgcc_s and libstdc++ (ldd
# bin/liminal); tzdata for pipeline time zones (time.LoadLocation),
# ca-certificates for TLS to databases, webhooks and SMTP.
FROM debian:${DEBIAN}-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libstdc++6 tzdata \
 && rm -rf /var/lib/apt/lists/*
# A fixed numeric uid/gid, so that Kubernetes' runAsNonRoot can check it and
# fsGroup can match it (deploy/k8s uses 10001).
RUN groupadd --system --gid 10001 liminal \
 && useradd --system --uid 10001 --gid liminal --home-dir /home/liminal --create-home \
        --shell /usr/sbin/nologin liminal \
 && mkdir -p /data /var/lib/liminal \
 && chown liminal:liminal /data /var/lib/liminal
COPY --from=onnxruntime /out/ /usr/local/lib/
COPY --from=build /out/liminal /usr/local/bin/liminal
USER 10001:10001
WORKDIR /data
# 7070 coordinator gRPC, 8089 coordinator HTTP (REST API, /metrics, health),
# 8090 worker HTTP (health).
EXPOSE 7070 8089 8090
ENTRYPOINT ["liminal"]
CMD ["--help"]
