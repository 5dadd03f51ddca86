#!/usr/bin/env bash
# presto.sh: a throw-away one-node PrestoDB 0.296 (presto-tests'
# DistributedQueryRunner with the tpch catalog, Java 17) for the presto://
# integration test of connectors/trino. Same commands as trino.sh:
#
#   scripts/presto.sh start      prints LIMINAL_PRESTO_URL=presto://liminal@127.0.0.1:<port>
#                                and LIMINAL_PRESTO_DIR=<run directory>
#   scripts/presto.sh stop [DIR]
#   scripts/presto.sh env
#
# Maven Central has no presto-server tarball newer than 0.287 (2.1 GB,
# Java 8/11), so the server tarball route is not used.
set -euo pipefail
exec env LIMINAL_SERVER_FLAVOR=presto "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/trino.sh" "$@"
