#!/usr/bin/env bash
# Fails when src/gen is not what scripts/generate.sh makes from proto/ now.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/generate.sh
if ! git diff --quiet --exit-code -- src/gen || [ -n "$(git ls-files --others --exclude-standard src/gen)" ]; then
  echo "src/gen is out of date with proto/: run 'npm run generate' and commit the result." >&2
  git --no-pager diff --stat -- src/gen >&2
  exit 1
fi
echo "generated code is up to date"
