#!/bin/sh
# deps.sh - installs the Debian packages attnscope needs that are missing.
# Nothing happens (and nothing is printed) when all are present.
set -e
PKGS="make gcc pkg-config libcmocka-dev libcjson-dev libopenblas-dev libpcre2-dev
libutf8proc-dev libncurses-dev libreadline-dev tmux ncurses-term"
# `deps.sh fuzz` / `deps.sh valgrind`: the extra tools of make fuzz / make valgrind.
[ "${1:-}" = fuzz ] && PKGS="clang-14 libclang-rt-14-dev"
[ "${1:-}" = valgrind ] && PKGS="valgrind"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps: installing$missing"
if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
