#!/usr/bin/env bash
# Installs Debian's headless-capable Chromium for the browser tests (playwright-core drives it via
# executablePath /usr/bin/chromium; Playwright's own browser downloads are not used). Idempotent:
# does nothing when /usr/bin/chromium already exists. Debian/Ubuntu only. A font is installed with it
# so the report screenshot has readable text on a bare machine.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  echo "setup-chromium: $(/usr/bin/chromium --version 2>/dev/null || echo chromium) already installed"; exit 0
fi
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
[ -x /usr/bin/chromium ] || { echo "setup-chromium: apt installed chromium but /usr/bin/chromium is missing" >&2; exit 1; }
echo "setup-chromium: installed $(dpkg-query -W -f='${Package} ${Version}' chromium)"
