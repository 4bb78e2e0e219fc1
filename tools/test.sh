#!/usr/bin/env bash
# Passes the tests on a fresh machine: installs what they read (tools/setup.sh: Debian packages,
# real models Maven does not bring), then runs them all. Extra arguments go to Maven, e.g.
# tools/test.sh -DexcludedGroups=model   (the fast tests only) or  tools/test.sh -Dtest=BigModelTest
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/tools/setup.sh"
cd "$root"
mvn -B test "$@"
