#!/usr/bin/env bash
# Installs what godwit needs on a fresh Debian 12 machine (run as root),
# skipping whatever is already there: QEMU, qemu-img, Debian's kernel and
# busybox (for the test guest), iproute2, and the Go modules.
set -euo pipefail

need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
command -v qemu-img >/dev/null || need+=(qemu-utils)
ls /boot/vmlinuz-* >/dev/null 2>&1 || need+=(linux-image-amd64)
[ -x /bin/busybox ] || need+=(busybox-static)
command -v ip >/dev/null || need+=(iproute2)
if [ ${#need[@]} -gt 0 ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "install-deps: missing ${need[*]}; run as root (or: sudo apt-get install ${need[*]})" >&2
		exit 1
	fi
	echo "install-deps: apt-get install ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if ! command -v go >/dev/null; then
	echo "install-deps: Go is not on PATH; godwit needs Go $(sed -n 's/^go //p' go.mod) (expected at /usr/local/go/bin)" >&2
	exit 1
fi
go mod download
