#!/usr/bin/env bash
# Makes the services the integration tests need available: moto's S3 server.
#
#   scripts/ci-services.sh            # install moto_server if it is missing, then check it runs
#   source scripts/ci-services.sh     # same, from another script (defines ensure_moto)
#
# The tests start their own `moto_server` on a free port; nothing is left running here. Under
# CI=true the tests fail (rather than skip) when moto_server is missing, so run this first.

ensure_moto() {
    if ! command -v moto_server >/dev/null 2>&1; then
        echo "ci-services: installing moto[server]" >&2
        python3 -m pip install -q 'moto[server]'
        # pyenv installs console scripts behind shims that need a rehash.
        if command -v pyenv >/dev/null 2>&1; then pyenv rehash; fi
    fi
    if ! command -v moto_server >/dev/null 2>&1; then
        echo "ci-services: moto_server still not on PATH after installing moto[server]" >&2
        return 1
    fi
    moto_server --help >/dev/null
    echo "ci-services: moto_server at $(command -v moto_server)" >&2
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    set -euo pipefail
    ensure_moto
fi
