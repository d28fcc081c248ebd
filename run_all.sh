#!/usr/bin/env bash
# resnet-bench entry point: sets up .venv (created on first use, reinstalled when pyproject.toml changes),
# then runs what was asked.
#
#   ./run_all.sh test [PYTEST ARGS]     run the test suite
#   ./run_all.sh cifar10 [OPTIONS]      run the CIFAR-10 suite, then build its reports (--help: options)
#   ./run_all.sh identity [OPTIONS]     Identity Mappings' Tables 1-3 on CIFAR-10 (shortcut designs, units)
#   ./run_all.sh imagenette [OPTIONS]   the ImageNet questions on Imagenette at 128 px (--data-dir DIR)
#   ./run_all.sh imagenet [OPTIONS]     the same on ILSVRC2012 at 224 px (--data-dir DIR, never downloaded)
#   ./run_all.sh FILE.toml [OPTIONS]    your own suite file (docs/suites.md: "Your own suite")
#   ./run_all.sh setup                  only create/refresh the environment
set -euo pipefail
# Paths the user gives (--data-dir, --results-dir) stay relative to where they ran this script;
# only the environment lives in the repository.
REPO=$(cd "$(dirname "$0")" && pwd)
VENV="$REPO/.venv"
STAMP="$VENV/.installed-from"

usage() {
    sed -n '2,11p' "$REPO/run_all.sh" | sed 's/^# \{0,1\}//'
}

find_python() {
    local candidate
    for candidate in "${PYTHON:-}" python3.11 python3.12 python3.13 python3; do
        [ -n "$candidate" ] || continue
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(not (3, 11) <= sys.version_info[:2] < (3, 14))' 2>/dev/null; then
            echo "$candidate"
            return 0
        fi
    done
    echo "error: resnet-bench needs Python 3.11-3.13 (3.11 recommended); set PYTHON=/path/to/python" >&2
    return 1
}

setup() {
    if [ ! -x "$VENV/bin/python" ]; then
        local python
        python=$(find_python)
        echo "setting up $VENV with $("$python" --version)"
        "$python" -m venv "$VENV"
    fi
    local wanted
    wanted=$(sha256sum <"$REPO/pyproject.toml" | cut -d" " -f1)
    if [ "$(cat "$STAMP" 2>/dev/null)" != "$wanted" ]; then
        echo "installing resnet-bench and its dependencies into $VENV (first time: a few minutes)"
        local status=0
        "$VENV/bin/python" -m pip install --quiet --editable "$REPO[dev]" >"$VENV/pip.log" 2>&1 || status=$?
        # The local package mirrors name folders they lack; those notes are noise, anything else is shown.
        grep -v "is ignored: it is neither a file nor a directory" "$VENV/pip.log" || true
        if [ "$status" -ne 0 ]; then
            echo "error: installing into $VENV failed (pip exit $status); full log: $VENV/pip.log" >&2
            exit 1
        fi
        echo "$wanted" >"$STAMP"
    fi
}

command=${1:-}
[ $# -gt 0 ] && shift
case "$command" in
    test)
        setup
        cd "$REPO"
        exec "$VENV/bin/python" -m pytest "$@"
        ;;
    setup)
        setup
        ;;
    cifar10 | identity | imagenette | imagenet | *.toml)
        setup
        exec "$VENV/bin/python" -m bench suite "$command" "$@"
        ;;
    -h | --help | help)
        usage
        ;;
    *)
        [ -n "$command" ] && echo "error: unknown command '$command'; choose one of: test, cifar10, identity, imagenette, imagenet, FILE.toml, setup" >&2
        usage >&2
        exit 2
        ;;
esac
