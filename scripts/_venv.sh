# Sourced by scripts/up (LOCK=run) and scripts/test (LOCK=test): make .venv from requirements.lock (run)
# or requirements-test.lock (test),
# exact versions with hashes, so this machine gets what CI tested. Re-made from scratch when the lock changes.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
LOCK=${LOCK:-run}
say() { echo "hotline setup: $*" >&2; }
PY=${PYTHON:-python3}
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  say "hotline needs Python 3.11 or newer as '$PY' (set PYTHON=...)"; exit 1
fi

# Debian packages: wait for another apt (up to 5 min) instead of failing on its lock, and say what failed.
apt_install() {
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    say "please install: sudo apt-get install $* ($WHY)"; return 0
  fi
  say "installing Debian packages: $* ($WHY)"
  local apt=(apt-get -o DPkg::Lock::Timeout=300 -qq)
  if ! { "${apt[@]}" update && DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y "$@" >/dev/null; }; then
    say "apt-get could not install $* (another apt still holding its lock after 5 min, or no package source)."
    say "install them by hand, then run this command again"; exit 1
  fi
}
missing=()
"$PY" -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
command -v espeak-ng >/dev/null || missing+=(espeak-ng)
command -v sox >/dev/null || missing+=(sox)
WHY="Python's venv, and prompt audio for Asterisk"
[ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"
if [ "$LOCK" = test ] && [ -z "${HOTLINE_NO_BROWSER:-}" ] && [ ! -x /usr/bin/chromium ]; then
  WHY="the browser tests drive it"; apt_install chromium
fi
if [ "$LOCK" = test ] && ! command -v promtool >/dev/null; then
  WHY="the alert rules are checked with promtool"; apt_install prometheus
fi

lockfile=requirements.lock
[ "$LOCK" = run ] || lockfile="requirements-$LOCK.lock"
want="$LOCK-$(cat "$lockfile" pyproject.toml | sha1sum | cut -c1-12)"
have=$(cat .venv/.hotline-lock 2>/dev/null || true)
# The test lock holds every run pin, so a test environment serves `up` too.
if [ "$have" != "$want" ] && ! { [ "$LOCK" = run ] && [ "${have%%-*}" = test ] && [ -x .venv/bin/hotline ]; }; then
  n=$(grep -c '^[A-Za-z0-9]' "$lockfile")
  say "creating .venv with the $n pinned packages of $lockfile (a minute or two, once)"
  rm -rf .venv
  "$PY" -m venv .venv
  if ! .venv/bin/pip install --quiet --disable-pip-version-check --require-hashes --no-deps \
        -r "$lockfile" 2> >(grep -v "is ignored" >&2); then
    say "pip could not install $lockfile (no access to the package index? see the error above)"; exit 1
  fi
  .venv/bin/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e . \
    2> >(grep -v "is ignored" >&2)
  echo "$want" > .venv/.hotline-lock
  say "done: .venv/bin/hotline is ready (or 'source .venv/bin/activate' to type just 'hotline')"
fi
