# Sourced by scripts/test: build the real Asterisk the end-to-end tests call through (../shared/peers,
# 3-5 minutes once per machine, cached outside the clone) and export HOTLINE_ASTERISK_PREFIX for them.
# Without the peers folder the real-Asterisk tests skip and say why; with CI=true they must run.
peers=${HOTLINE_PEERS:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/../shared/peers}
export HOTLINE_ASTERISK_PREFIX=${HOTLINE_ASTERISK_PREFIX:-/var/cache/hotline-peers/asterisk-22}
if [ -x "$peers/build-asterisk.sh" ] && [ -z "${HOTLINE_NO_ASTERISK:-}" ]; then
  mkdir -p "$(dirname "$HOTLINE_ASTERISK_PREFIX")" 2>/dev/null || true
  echo "hotline setup: real Asterisk for the end-to-end tests in $HOTLINE_ASTERISK_PREFIX (built once, 3-5 min)" >&2
  if ! bash "$peers/build-asterisk.sh" "$HOTLINE_ASTERISK_PREFIX" >&2; then
    [ "${CI:-}" = true ] && { echo "hotline setup: the Asterisk build failed" >&2; exit 1; }
    echo "hotline setup: the Asterisk build failed; the real-Asterisk tests will skip" >&2
  fi
fi
# SIPp plays the agents' and callers' SIP phones in those tests.
if [ -x "$HOTLINE_ASTERISK_PREFIX/sbin/asterisk" ] && ! command -v sipp >/dev/null && [ "$(id -u)" = 0 ]; then
  WHY="SIP phones in the Asterisk tests"; apt_install sip-tester
fi
