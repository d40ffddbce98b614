#!/usr/bin/env bash
# Builds godwit's Debian package with dpkg-deb alone (no nfpm, no
# debhelper): bin/godwit_<version>_<arch>.deb with
#   /usr/bin/godwit                          the one binary
#   /usr/bin/godwit-guest                    the test guest's program (image build-testguest)
#   /lib/systemd/system/godwit-*.service     deploy/systemd
#   /etc/godwit/{controller,agent}.conf      deploy/etc (conffiles)
#   /usr/share/doc/godwit/                   deployment, networking, security, reliability docs
# and deploy/debian's maintainer scripts (the godwit user, directories).
# The version is internal/version's, with Debian's '~' for a pre-release
# ("0.1.0-dev" → "0.1.0~dev": it sorts before 0.1.0). It prints the
# package's path on its last line. DEB_COMPRESS is dpkg-deb's -Z (xz by
# default; the deployment test builds with none: xz takes 15 s and more
# on two busy cores, and the contents are the same).
set -euo pipefail

cd "$(dirname "$0")/.."
GO=${GO:-go}
OUT=${OUT:-bin}
DEB_COMPRESS=${DEB_COMPRESS:-xz}

version=$(sed -n 's/^var Version = "\(.*\)"$/\1/p' internal/version/version.go)
if [ -z "$version" ]; then
	echo "deb: no 'var Version = \"...\"' line in internal/version/version.go" >&2
	exit 1
fi
debversion=${version//-/\~}
arch=${ARCH:-$(dpkg --print-architecture)}
goarch=$arch
case "$arch" in
amd64 | arm64 | riscv64 | ppc64le | s390x) ;;
i386) goarch=386 ;;
armhf) goarch=arm ;;
*)
	echo "deb: no Go architecture for Debian's $arch; set ARCH" >&2
	exit 1
	;;
esac

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root=$stage/root
install -d -m 0755 "$root"
install -d "$root/DEBIAN" "$root/usr/bin" "$root/lib/systemd/system" "$root/etc/godwit" "$root/usr/share/doc/godwit"

# Pure Go (SQLite included): no libc version to depend on.
CGO_ENABLED=0 GOOS=linux GOARCH=$goarch "$GO" build -trimpath -ldflags "-s -w" -o "$root/usr/bin/godwit" ./cmd/godwit
# The test guest's program: godwit image build-testguest looks for it
# beside godwit.
CGO_ENABLED=0 GOOS=linux GOARCH=$goarch "$GO" build -trimpath -ldflags "-s -w" -o "$root/usr/bin/godwit-guest" ./cmd/godwit-guest
chmod 0755 "$root/usr/bin/godwit" "$root/usr/bin/godwit-guest"
install -m 0644 deploy/systemd/*.service "$root/lib/systemd/system/"
install -m 0644 deploy/etc/controller.conf "$root/etc/godwit/"
# The agent's may come to hold a join token.
install -m 0600 deploy/etc/agent.conf "$root/etc/godwit/"
for d in deploy networking security reliability architecture; do
	install -m 0644 "docs/$d.md" "$root/usr/share/doc/godwit/"
done
install -m 0644 README.md "$root/usr/share/doc/godwit/"
install -m 0755 deploy/debian/postinst deploy/debian/prerm deploy/debian/postrm "$root/DEBIAN/"
printf '/etc/godwit/controller.conf\n/etc/godwit/agent.conf\n' >"$root/DEBIAN/conffiles"

size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
cat >"$root/DEBIAN/control" <<CONTROL
Package: godwit
Version: $debversion
Architecture: $arch
Maintainer: godwit developers <godwit@localhost>
Installed-Size: $size
Depends: passwd
Recommends: qemu-system-x86 (>= 1:7.2), qemu-utils, iproute2, nftables
Suggests: nfs-common
Section: admin
Priority: optional
Homepage: https://github.com/godwit/godwit
Description: compute controller for KVM clusters, built around VM mobility
 godwit runs a cluster of KVM hosts: a controller (godwit serve, unit
 godwit-controller) with a REST API, a scheduler and live and cold
 migration, drain, evacuate and resize; and a host agent on every host
 (godwit agent, units godwit-agent and godwit-agent-watchdog) that runs
 each VM as its own QEMU process. One binary, /usr/bin/godwit, is also
 the command line. See /usr/share/doc/godwit/deploy.md.
CONTROL

mkdir -p "$OUT"
deb=$OUT/godwit_${debversion}_${arch}.deb
dpkg-deb --root-owner-group "-Z$DEB_COMPRESS" --build "$root" "$deb" >/dev/null
echo "$deb"
