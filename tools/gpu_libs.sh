#!/usr/bin/env bash
# The libraries the whole `linfer` build needs and a GPU machine (Ubuntu 24.04, no package installs)
# lacks, as one small archive for tools/gpu_check.sh to unpack into its prefix: run on a Debian 12
# machine (the build machines), from the repository root:
#   bash tools/gpu_libs.sh [DIR]          # default .device/debs; writes DIR/gpu-libs.tar.xz
# Debian's packages (fetched with apt-get download, unpacked with dpkg -x), trimmed to what the build
# and the binaries use, so the archive travels within a device call's size limit (~10 MB instead of the
# packages' 30): headers, pkg-config and CMake files, shared libraries (no static ones), ICU's common
# and data libraries only (icu-uc: soname 72, beside the machine's own ICU 74 without a clash), and of
# Boost the header modules src/server/http_server.cpp reaches (Asio, Beast and what they include), as
# listed by the compiler. The packages' own .debs (same names as apt-get download gives) work too.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-.device/debs}
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pkgs=(libxxhash-dev libxxhash0 pkgconf-bin libpkgconf3 libpcre2-dev libpcre2-8-0 libicu-dev libicu72
      libhiredis-dev libhiredis0.14 libboost1.74-dev libhwy-dev)
(cd "$tmp" && apt-get download "${pkgs[@]}" >/dev/null)
mkdir "$tmp/root"
for f in "$tmp"/*.deb; do dpkg -x "$f" "$tmp/root"; done
root=$tmp/root/usr
lib=$root/lib/x86_64-linux-gnu
# Boost: whole modules of every header the HTTP server's translation unit includes.
mods=$(g++ -std=c++20 -M -nostdinc++ -isystem /usr/include/c++/"$(g++ -dumpversion)" \
         -isystem /usr/include/x86_64-linux-gnu/c++/"$(g++ -dumpversion)" -I"$root/include" -Iinclude -Isrc \
         src/server/http_server.cpp 2>/dev/null |
       tr ' \\' '\n\n' | sed -n "s|^$root/include/boost/\([^/]*\)/.*|\1|p" | sort -u)
[ -n "$mods" ] || { echo "gpu_libs: the compiler listed no Boost headers" >&2; exit 1; }
keep=(usr/bin/pkgconf usr/include/unicode usr/include/pcre2.h usr/include/hiredis usr/include/hwy
      usr/lib/x86_64-linux-gnu/pkgconfig usr/lib/x86_64-linux-gnu/cmake)
keep+=($(cd "$tmp/root" && ls -d usr/include/xx*.h usr/include/boost/*.hpp))
for m in $mods; do keep+=("usr/include/boost/$m"); done
keep+=($(cd "$tmp/root" && ls -d usr/lib/x86_64-linux-gnu/lib{xxhash,pkgconf,pcre2-8,hiredis,icuuc,icudata}.so*))
tar -C "$tmp/root" -cJf "$out/gpu-libs.tar.xz" "${keep[@]}"
echo "gpu_libs: $out/gpu-libs.tar.xz ($(du -h "$out/gpu-libs.tar.xz" | cut -f1); Boost modules: $(echo $mods))"
