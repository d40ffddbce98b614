#!/usr/bin/env bash
# Installs what godwit needs on a fresh Debian 12 machine (run as root),
# skipping whatever is already there: QEMU 9.0 or newer, qemu-img,
# Debian's kernel and busybox (for the test guest), iproute2, nftables
# (port security of VM NICs), and the Go
# modules. With GODWIT_DEPS=test (make test) also what only the tests
# need: Chromium and ChromeDriver for the dashboard's browser test, and
# the openstack and nova clients for the Nova API's.
#
# QEMU: before 9.0 QEMU loses guest writes when it migrates a TCG guest
# (upstream 03bfc2188f06, "physmem: Fix migration dirty bitmap coherency
# with TCG memory access"); Debian 12's 7.2 lacks the fix. Where the
# installed QEMU is older, this adds bookworm-backports from the Debian
# mirror apt already uses (read from apt's own configuration) and installs
# QEMU 10 from it. docs/migration.md says more.
set -euo pipefail

as_root() {
	if [ "$(id -u)" != 0 ]; then
		echo "install-deps: $1; run as root" >&2
		exit 1
	fi
}

# qemu_ok: the installed qemu-system-x86_64 is 9.0 or newer.
qemu_ok() {
	command -v qemu-system-x86_64 >/dev/null || return 1
	local v
	v=$(qemu-system-x86_64 --version | sed -n '1s/.*version \([0-9]*\)\..*/\1/p')
	[ -n "$v" ] && [ "$v" -ge 9 ]
}

# add_backports writes a sources entry for <codename>-backports on the
# mirror that serves <codename>'s main component, unless apt has one.
add_backports() {
	local codename site list=/etc/apt/sources.list.d/godwit-backports.sources
	codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
	if [ -z "$codename" ]; then
		echo "install-deps: /etc/os-release names no codename; cannot pick a backports suite" >&2
		exit 1
	fi
	if apt-get indextargets "Release: $codename-backports" "Identifier: Packages" 2>/dev/null | grep -q .; then
		return 0
	fi
	site=$(apt-get indextargets --format '$(SITE)' "Release: $codename" "Identifier: Packages" "Component: main" | head -n 1)
	if [ -z "$site" ]; then
		echo "install-deps: apt has no source for $codename main to derive a backports mirror from" >&2
		exit 1
	fi
	echo "install-deps: adding $codename-backports from $site ($list)"
	{
		echo "Types: deb"
		echo "URIs: $site"
		echo "Suites: $codename-backports"
		echo "Components: main"
		if [ -f /usr/share/keyrings/debian-archive-keyring.gpg ]; then
			echo "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg"
		fi
	} >"$list"
}

export DEBIAN_FRONTEND=noninteractive
updated=
apt_update() {
	[ -n "$updated" ] && return 0
	apt-get update -qq
	updated=1
}

if ! qemu_ok; then
	as_root "QEMU 9.0 or newer is missing"
	add_backports
	codename=$(. /etc/os-release && echo "$VERSION_CODENAME")
	apt_update
	echo "install-deps: apt-get install -t $codename-backports qemu-system-x86 qemu-utils (QEMU >= 9.0; see docs/migration.md)"
	apt-get install -y -qq --no-install-recommends -t "$codename-backports" \
		qemu-system-x86 qemu-utils >/dev/null
	if ! qemu_ok; then
		echo "install-deps: installed QEMU is still older than 9.0: $(qemu-system-x86_64 --version | head -n 1)" >&2
		exit 1
	fi
fi

need=()
command -v qemu-img >/dev/null || need+=(qemu-utils)
ls /boot/vmlinuz-* >/dev/null 2>&1 || need+=(linux-image-amd64)
[ -x /bin/busybox ] || need+=(busybox-static)
command -v ip >/dev/null || need+=(iproute2)
command -v tc >/dev/null || need+=(iproute2)
command -v nft >/dev/null || need+=(nftables) # port security of VM NICs
if [ "${GODWIT_DEPS:-}" = test ]; then
	[ -x /usr/bin/chromium ] || need+=(chromium)
	[ -x /usr/bin/chromedriver ] || need+=(chromium-driver)
	[ -d /usr/share/fonts/truetype/liberation ] || need+=(fonts-liberation) # a recommends of chromium's
	[ -x /usr/bin/openstack ] || need+=(python3-openstackclient) # the Nova API's tests
	[ -x /usr/bin/nova ] || need+=(python3-novaclient)
	[ -d /usr/lib/python3/dist-packages/tempest ] || need+=(tempest) # Nova's response schemas
fi
if [ ${#need[@]} -gt 0 ]; then
	as_root "missing ${need[*]} (or: sudo apt-get install ${need[*]})"
	echo "install-deps: apt-get install ${need[*]}"
	apt_update
	apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if ! command -v go >/dev/null; then
	echo "install-deps: Go is not on PATH; godwit needs Go $(sed -n 's/^go //p' go.mod) (expected at /usr/local/go/bin)" >&2
	exit 1
fi
go mod download
