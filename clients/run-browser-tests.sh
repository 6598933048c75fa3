#!/usr/bin/env bash
# Browser tests of the page (clients/web) and the Chrome extension (clients/chrome-extension):
# installs Debian's chromium and the npm test dependency when missing, builds the `tagger` binary
# and runs `node --test` on clients/tests. Idempotent; quiet unless something fails.
#   TAGGER_PROFILE=release  test a release build of `tagger` (default: the dev profile)
#   TAGGER_BIN=/path/tagger use that binary and build nothing
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"

apt_install() {
  if [ "$(id -u)" -ne 0 ]; then echo "run-browser-tests: need root to apt-get install $*" >&2; exit 1; fi
  if [ -z "${apt_updated:-}" ]; then apt-get update -qq >/dev/null; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
command -v node >/dev/null && command -v npm >/dev/null || apt_install nodejs npm
[ -x "${CHROMIUM_BIN:-/usr/bin/chromium}" ] || apt_install chromium

cd "$here"
# Reinstall only when the lock file changed since the last install.
if ! cmp -s package-lock.json node_modules/.installed-lock.json 2>/dev/null; then
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
  cp package-lock.json node_modules/.installed-lock.json
fi

if [ -z "${TAGGER_BIN:-}" ]; then
  profile="${TAGGER_PROFILE:-dev}"
  (cd "$root" && cargo build --quiet -p tagger-cli --profile "$profile")
  dir=$([ "$profile" = dev ] && echo debug || echo "$profile")
  export TAGGER_BIN="${CARGO_TARGET_DIR:-$root/target}/$dir/tagger"
fi
chromium_version=$("${CHROMIUM_BIN:-/usr/bin/chromium}" --version 2>/dev/null || true)
echo "browser tests: ${chromium_version:-chromium}, node $(node --version), tagger ${TAGGER_BIN}"
exec node --test --test-concurrency=1 tests/*.test.mjs
