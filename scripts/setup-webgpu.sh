#!/usr/bin/env bash
# Installs a software WebGPU adapter for Dawn (npm `webgpu`) on Debian/Ubuntu: Mesa's lavapipe
# Vulkan driver. Idempotent: does nothing when a lavapipe ICD is already installed.
# Debian 12's own Mesa (22.3) is rejected by Dawn, so on bookworm it comes from bookworm-backports.
set -euo pipefail
if ls /usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null 2>&1 && ldconfig -p | grep -q libvulkan.so.1; then
  echo "setup-webgpu: lavapipe already installed"; exit 0
fi
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
. /etc/os-release
if [ "${ID:-}" = debian ] && [ "${VERSION_CODENAME:-}" = bookworm ]; then
  if ! grep -rqs bookworm-backports /etc/apt/sources.list /etc/apt/sources.list.d/; then
    $SUDO tee /etc/apt/sources.list.d/bookworm-backports.sources >/dev/null <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers libvulkan1 >/dev/null
else
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq mesa-vulkan-drivers libvulkan1 >/dev/null
fi
echo "setup-webgpu: installed $(dpkg-query -W -f='${Package} ${Version}' mesa-vulkan-drivers)"
