#!/usr/bin/env bash
# Offline checks of the SAM template: cfn-lint, `sam validate --lint` and checkov.
# Usage: infra/check.sh [template]   (default: infra/template.yaml)
# Installs the checkers with pip (quietly) when missing. Exits non-zero if any check fails.
# Needs no AWS credentials, and no network beyond the pip install.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
template="${1:-$here/template.yaml}"
[ -f "$template" ] || { echo "error: no template at $template" >&2; exit 2; }

need() { # need <command> <pip package>
  command -v "$1" >/dev/null 2>&1 && return 0
  echo "installing $2 ..."
  python3 -m pip install --quiet --disable-pip-version-check "$2" || {
    echo "error: could not install $2" >&2
    exit 2
  }
  hash -r
}
need cfn-lint cfn-lint
need sam aws-sam-cli
need checkov checkov

status=0
run() { # run <name> <command...>
  echo "== $1"
  if "${@:2}"; then echo "ok: $1"; else echo "FAILED: $1" >&2; status=1; fi
}

run cfn-lint cfn-lint "$template"
# With --lint, sam validate needs no credentials (it runs cfn-lint's SAM transform locally) but
# still catches SAM-level mistakes plain cfn-lint misses.
run "sam validate" env SAM_CLI_TELEMETRY=0 sam validate --region us-east-1 -t "$template" --lint
run checkov checkov -f "$template" --framework cloudformation --skip-download --quiet --compact

exit $status
