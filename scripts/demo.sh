#!/usr/bin/env bash
# The demo behind `make demo`: a three-host cluster on this machine, the
# test guest built from Debian's kernel and busybox, and a real VM booted
# on it. The cluster is left running; `bin/godwit down` stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
G=bin/godwit
DIR=${DEMO_DIR:-$HOME/.godwit/demo}
# The cluster has a CA (godwit up makes it in $DIR/pki): the API is HTTPS,
# the hosts speak mutual TLS, and every move between them is encrypted.
export GODWIT_SERVER=https://127.0.0.1:7400 GODWIT_CA=$DIR/pki/ca.crt

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "Starting a fresh 3-host cluster in $DIR"
$G down --dir "$DIR" >/dev/null 2>&1 || true
rm -rf "$DIR"
$G up --hosts 3 --driver qemu --dir "$DIR" --detach
# godwit up made the cluster's first admin token (mode 0600).
GODWIT_TOKEN=$(cat "$DIR/admin.token")
export GODWIT_TOKEN

step "Hosts (accelerator: KVM where the probe boots Linux under it, else TCG)"
$G host list

step "Building the test guest (Debian kernel + busybox initramfs) and importing it"
$G image build-testguest --out "$DIR/guest" --import testguest
$G image list

step "The cluster's network: this machine holds its gateway, on the bridge every host plugs its VMs into"
$G network list

step "Creating a VM on it: 1 vCPU, 256 MiB (room to grow online to 1 GiB), a 256 MiB disk on the shared pool"
$G vm create demo-1 --image testguest --vcpus 1 --memory 256M --max-memory 1G --disk 256M --pool shared --network local --cmdline "dirty_mb=32 dirty_rate_mb=8"
$G vm list
IP=$($G vm show demo-1 | sed -n 's/^NIC eth0: *\([0-9.]*\) .*/\1/p')

step "Waiting for the guest's heartbeat on its serial console"
for i in $(seq 1 120); do
	if $G vm console demo-1 | grep -q 'godwit-guest hb='; then break; fi
	sleep 1
done
sleep 2
$G vm console demo-1 | grep 'godwit-guest hb=' | tail -n 5

step "Host table with the VM placed"
$G host list

step "Live-migrating demo-1 to another host while it runs (capped at 125 MB/s), pinged every 10 ms from this machine"
$G probe "$IP" --stream 7777 --for 5m >"$DIR/probe.txt" 2>/dev/null &
PROBE=$!
sleep 1
$G migrate demo-1 --live --bandwidth 125 --wait
sleep 1
kill -INT $PROBE
wait $PROBE || true
$G vm show demo-1

step "What a client of $IP saw: the longest gap in ping replies, and its TCP connection"
cat "$DIR/probe.txt"

step "The guest never restarted: its heartbeat counter carries on on the new host"
sleep 1
$G vm console demo-1 | grep 'godwit-guest hb=' | head -n 2
$G vm console demo-1 | grep 'godwit-guest hb=' | tail -n 2

step "Cold-migrating it back to host1: stopped, started there on the same shared disk"
$G migrate demo-1 --cold --to host1 --wait
$G migration list

step "A second VM, with a local disk, joins demo-1 on host1"
$G vm create demo-2 --image testguest --vcpus 1 --memory 192M --disk 128M --pool local --host host1 --cmdline "dirty_mb=16 dirty_rate_mb=4"
for i in $(seq 1 120); do
	if $G vm console demo-2 | grep -q 'godwit-guest hb='; then break; fi
	sleep 1
done

step "Maintenance on host1: the drain plan first (a dry run changes nothing)"
$G drain host1 --dry-run --bandwidth 125

step "Draining host1: every VM moves away live, the host leaves scheduling"
$G drain host1 --bandwidth 125 --wait
$G host list
$G vm list

step "host1 is back from maintenance"
$G host enable host1

step "Who may do what: a member of project default sees its VMs, but moving them is an admin's"
MEMBER=$($G token create demo-user --project default --role member -o json | sed -n 's/.*"secret": "\(.*\)".*/\1/p')
GODWIT_TOKEN=$MEMBER $G whoami
GODWIT_TOKEN=$MEMBER $G vm list
GODWIT_TOKEN=$MEMBER $G migrate demo-1 --live || true
$G audit --limit 3

step "Resizing demo-1 online: 2 vCPUs, 512 MiB (vCPU and virtio-mem hotplug), same QEMU process"
$G vm show demo-1 | grep -iE '^(qemu pid|vcpus|memory):' || true
$G resize demo-1 --vcpus 2 --memory 512M --wait
$G vm show demo-1 | grep -iE '^(qemu pid|vcpus|memory):' || true
sleep 2
$G vm console demo-1 | grep 'godwit-guest hb=' | tail -n 1

cat <<MSG

The cluster is still running (state in $DIR, logs in $DIR/logs).
  export GODWIT_SERVER=$GODWIT_SERVER GODWIT_CA=$GODWIT_CA GODWIT_TOKEN=\$(cat $DIR/admin.token)
  bin/godwit vm console demo-1 -f     # follow the guest's heartbeat (Ctrl-C to stop)
  bin/godwit vm stop demo-1           # graceful power-off
  bin/godwit down --dir $DIR          # stop the cluster and its VMs
The dashboard: $GODWIT_SERVER/ui/ (log in with the token in $DIR/admin.token;
the browser asks once to accept the cluster's own CA, $GODWIT_CA).
MSG
