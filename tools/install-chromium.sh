#!/usr/bin/env bash
# Installs Debian's chromium for the browser test (test/docs-browser.test.ts), which drives it with
# playwright-core (no browser download from playwright's CDN). Idempotent: does nothing when
# /usr/bin/chromium exists. Runs apt-get as root, or through sudo when that exists.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
  echo "chromium: already installed ($(/usr/bin/chromium --version 2>/dev/null || echo /usr/bin/chromium))"
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1; then
  as_root=(sudo)
else
  echo "install-chromium: not root and no sudo; install the Debian package 'chromium' yourself" >&2
  exit 1
fi

echo "chromium: installing the Debian package (about a minute)…"
"${as_root[@]}" apt-get update
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium
/usr/bin/chromium --version 2>/dev/null
