#!/usr/bin/env bash
# Offline checks of the SAM template: cfn-lint, `sam validate --lint`, checkov, and
# infra/translate_check.py (the template transformed by aws-sam-translator, as CloudFormation
# deploys it, with assertions on the resulting resources).
# Usage: infra/check.sh [template] [samconfig]   (defaults: infra/template.yaml, infra/samconfig.toml)
# Installs the checkers with pip (quietly) when missing. Exits non-zero if any check fails.
# Needs no AWS credentials, and no network beyond the pip install.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
template="${1:-$here/template.yaml}"
samconfig="${2:-$here/samconfig.toml}"
[ -f "$template" ] || { echo "error: no template at $template" >&2; exit 2; }
[ -f "$samconfig" ] || { echo "error: no samconfig at $samconfig" >&2; exit 2; }

need() { # need <command> <pip package>
  command -v "$1" >/dev/null 2>&1 && return 0
  echo "installing $2 ..."
  python3 -m pip install --quiet --disable-pip-version-check "$2" || {
    echo "error: could not install $2" >&2
    exit 2
  }
  hash -r
}
need_module() { # need_module <python module> <pip package>
  python3 -c "import $1" >/dev/null 2>&1 && return 0
  echo "installing $2 ..."
  python3 -m pip install --quiet --disable-pip-version-check "$2" || {
    echo "error: could not install $2" >&2
    exit 2
  }
}
need cfn-lint cfn-lint
need sam aws-sam-cli
need checkov checkov
need_module samtranslator aws-sam-translator
need_module yaml pyyaml
need cargo-lambda cargo-lambda

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
run "transformed template" python3 "$here/translate_check.py" "$template" "$samconfig"

# `sam build` with CARGO_TARGET_DIR already set: SAM CLI before 1.165 builds there but copies the
# binary from functions/<name>/target and fails. Builds a one-crate workspace the way the template
# builds its functions (rust-cargolambda, provided.al2023; x86_64 so no arm64 std is needed) and
# checks the artifact exists. Takes seconds: the crate has no dependencies.
sam_build_with_target_dir() {
  local tmp rc=0
  tmp="$(mktemp -d)"
  mkdir -p "$tmp/ws/hello/src"
  printf '[workspace]\nmembers = ["hello"]\nresolver = "2"\n' >"$tmp/ws/Cargo.toml"
  printf '[package]\nname = "hello"\nversion = "0.1.0"\nedition = "2021"\n' >"$tmp/ws/hello/Cargo.toml"
  echo 'fn main() {}' >"$tmp/ws/hello/src/main.rs"
  cat >"$tmp/ws/template.yaml" <<'YAML'
Transform: AWS::Serverless-2016-10-31
Resources:
  Hello:
    Type: AWS::Serverless::Function
    Metadata:
      BuildMethod: rust-cargolambda
      BuildProperties:
        Binary: hello
    Properties:
      CodeUri: hello
      Handler: bootstrap
      Runtime: provided.al2023
      Architectures: [x86_64]
YAML
  (cd "$tmp/ws" && CARGO_TARGET_DIR="$tmp/elsewhere" SAM_CLI_TELEMETRY=0 \
    sam build --beta-features -t template.yaml -b "$tmp/build" >"$tmp/log" 2>&1) || rc=1
  if [ $rc -ne 0 ] || [ ! -x "$tmp/build/Hello/bootstrap" ]; then
    tail -5 "$tmp/log" >&2
    echo "sam build cannot build with CARGO_TARGET_DIR set ($(sam --version)): pip install -U 'aws-sam-cli>=1.165'" >&2
    rc=1
  fi
  rm -rf "$tmp"
  return $rc
}
run "sam build with CARGO_TARGET_DIR set" sam_build_with_target_dir

exit $status
