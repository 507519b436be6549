#!/usr/bin/env bash
# ensure-webgpu.sh — make sure this machine can run WebGPU compute through Dawn.
#
# 1. If `node scripts/probe-adapter.mjs` finds an adapter, do nothing.
# 2. Otherwise, when running as root on Debian/Ubuntu, install the Vulkan loader and Mesa's
#    lavapipe (software Vulkan). Debian 12's own Mesa 22.3 is rejected by Dawn
#    ("shaderUniform*ArrayDynamicIndexing required"), so on bookworm the packages come from
#    bookworm-backports (Mesa 25), which works. With --browser, also install Debian's chromium.
# 3. Otherwise print exactly what to install, and exit non-zero.
#
# Usage: scripts/ensure-webgpu.sh [--browser] [--quiet]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
want_browser=0 quiet=0
for a in "$@"; do
  case "$a" in
    --browser) want_browser=1 ;;
    --quiet) quiet=1 ;;
    *) echo "ensure-webgpu: unknown option $a" >&2; exit 2 ;;
  esac
done
say() { [ "$quiet" = 1 ] || echo "ensure-webgpu: $*" >&2; }

probe() { node "$here/probe-adapter.mjs" >/dev/null 2>&1; }
need_browser() { [ "$want_browser" = 1 ] && ! command -v chromium >/dev/null 2>&1; }

if probe && ! need_browser; then
  say "WebGPU adapter found"
  exit 0
fi

. /etc/os-release 2>/dev/null || true
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  cat >&2 <<EOF
ensure-webgpu: no WebGPU adapter is available to Node (the 'webgpu' package, Dawn).
  With a GPU: install its Vulkan driver and the Vulkan loader (libvulkan1).
  Without one: install Mesa's software Vulkan, lavapipe, version 23 or newer:
    Debian 12:  echo 'deb http://deb.debian.org/debian bookworm-backports main' \\
                  > /etc/apt/sources.list.d/backports.list && apt-get update &&
                apt-get install -y -t bookworm-backports libvulkan1 mesa-vulkan-drivers
    Ubuntu/Debian 13: apt-get install -y libvulkan1 mesa-vulkan-drivers
  Then check with: npx zpd-wgpu doctor
EOF
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
pkgs="libvulkan1 mesa-vulkan-drivers"
target=()
if [ "${VERSION_CODENAME:-}" = bookworm ]; then
  list=/etc/apt/sources.list.d/zpd-wgpu-backports.list
  if ! grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
    say "enabling bookworm-backports (Mesa 25; Debian 12's Mesa 22.3 is rejected by Dawn)"
    echo "deb http://deb.debian.org/debian bookworm-backports main" > "$list"
  fi
  target=(-t bookworm-backports)
fi
say "installing $pkgs"
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${target[@]}" $pkgs >/dev/null
if need_browser; then
  say "installing chromium (browser tests)"
  apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi

if probe; then
  say "WebGPU adapter found after installing $pkgs"
  exit 0
fi
echo "ensure-webgpu: installed $pkgs but Node still finds no WebGPU adapter; run 'node scripts/probe-adapter.mjs' to see why" >&2
exit 1
