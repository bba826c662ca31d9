#!/usr/bin/env bash
# bench-kernel.sh: how fast kpc's outputs load into the kernel, at cluster
# scale, next to kube-proxy's own nftables layout of the same cluster.
#
# For 1,000 and 10,000 Services (10 endpoints each; add 50,000 with --50k)
# it generates a synthetic cluster (kpc gen), times kpc compile (wall clock
# and peak memory), and times, each in a fresh network namespace, nft -f of
# kpc's nft output, iptables-legacy-restore and iptables-nft-restore
# --noflush of kpc's iptables output, kpc apply --netns (netlink, when this
# kpc has it) and nft -f of kube-proxy's layout (up to 1,000 Services unless
# --kube-proxy-10k: it takes minutes at 10,000). Medians of 3 runs, printed
# as a Markdown table. Optionally (--connrate) it then measures new TCP
# connections per second through a node holding 1 and 10,000 Services,
# loaded with nft -f, with netlink and with iptables-legacy-restore.
#
# Needs root, nft, iptables-legacy-restore, iptables-nft-restore and
# iproute2; creates and deletes its own network namespaces (kpcb-*,
# kpcl-*) and changes nothing in the namespace it runs in. Each command is
# killed after --timeout seconds.
#
# Usage: scripts/bench-kernel.sh [--n 1000,10000] [--50k] [--runs 3]
#          [--timeout 300] [--kube-proxy-10k] [--mixed] [--endpoints 10]
#          [--keep DIR] [--only kube-proxy,legacy,...] [--connrate]
set -euo pipefail

sizes=1000,10000
runs=3
timeout=300
kube_proxy_max=1000
endpoints=10
mixed=()
keep=()
only=()
connrate=false
while [ $# -gt 0 ]; do
	case "$1" in
	--n) sizes=$2; shift ;;
	--50k) sizes=$sizes,50000 ;;
	--runs) runs=$2; shift ;;
	--timeout) timeout=$2; shift ;;
	--kube-proxy-10k) kube_proxy_max=10000 ;;
	--mixed) mixed=(-mixed) ;;
	--endpoints) endpoints=$2; shift ;;
	--keep) keep=(-keep "$2"); shift ;;
	--only) only=(-only "$2"); shift ;;
	--connrate) connrate=true ;;
	-h | --help) sed -n '2,/^set -e/p' "$0" | sed 's/^# \{0,1\}//; /^set -e/d'; exit 0 ;;
	*) echo "bench-kernel.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
	esac
	shift
done
if [ "$(id -u)" != 0 ]; then
	echo "bench-kernel.sh: needs root (network namespaces, nft, iptables)" >&2
	exit 1
fi

cd "$(dirname "$0")/.."
bin=$(mktemp -d /tmp/kpc-bench-bin.XXXXXX)
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/kpc" ./cmd/kpc
go build -o "$bin/kernelbench" ./internal/bench/cmd/kernelbench

"$bin/kernelbench" -kpc "$bin/kpc" -n "$sizes" -runs "$runs" -timeout "${timeout}s" \
	-kube-proxy-max "$kube_proxy_max" -endpoints "$endpoints" ${mixed[@]+"${mixed[@]}"} ${keep[@]+"${keep[@]}"} ${only[@]+"${only[@]}"}

if $connrate; then
	go build -o "$bin/connrate" ./internal/bench/cmd/connrate
	"$bin/connrate" -timeout "${timeout}s"
fi
