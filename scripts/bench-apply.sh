#!/usr/bin/env bash
# bench-apply.sh: how long kpc takes to apply one changed Service among
# many, against the real kernel, as a one-shot `kpc apply` and through
# `kpc apply --watch`.
#
# It generates a cluster (kpc gen, mixed unless --plain) as one file, or
# with --dir as a directory of a file per Service (the node context in a
# file of its own). In a fresh network namespace it applies the whole
# cluster with `kpc apply`, then --changes times replaces one IPv4
# endpoint address (in place, the same length, at Services spread over
# the cluster) and runs `kpc apply --timings` again: each line it prints
# is one one-shot incremental apply. In another fresh namespace it starts
# `kpc apply --watch`, waits until the whole cluster is applied and
# counted, and makes the same kind of change --changes times, --pause
# seconds apart: each line is the watcher's own account of one change,
# from the first file event to the kernel's answer. Then the medians.
# With --foreign, each change follows a commit to another table of the
# namespace (as another tool's rules would come), which makes a one-shot
# apply read kpc's tables back before it trusts its cache.
#
# Needs root, nft's kernel support and iproute2; creates and deletes its
# own network namespaces (kpca-*) and temporary directory, and changes
# nothing in the namespace it runs in. Nothing is timed by this script
# itself: every figure is kpc's own (--timings, the watcher's lines).
#
# Usage: scripts/bench-apply.sh [--services 50000] [--endpoints 5] [--plain]
#          [--dir] [--foreign] [--changes 12] [--pause 2] [--keep DIR]
set -euo pipefail

services=50000
endpoints=5
plain=()
dir=false
foreign=false
changes=12
pause=2
keep=
while [ $# -gt 0 ]; do
	case $1 in
	--services) services=$2; shift ;;
	--endpoints) endpoints=$2; shift ;;
	--plain) plain=(--plain) ;;
	--dir) dir=true ;;
	--foreign) foreign=true ;;
	--changes) changes=$2; shift ;;
	--pause) pause=$2; shift ;;
	--keep) keep=$2; shift ;;
	-h | --help) sed -n '2,/^set -e/p' "$0" | sed 's/^# \{0,1\}//; /^set -e/d'; exit 0 ;;
	*) echo "bench-apply.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
	esac
	shift
done
if [ "$(id -u)" != 0 ]; then
	echo "bench-apply.sh: needs root (network namespaces, nftables)" >&2
	exit 1
fi

cd "$(dirname "$0")/.."
work=$(mktemp -d /tmp/kpc-bench-apply.XXXXXX)
ns=kpca-$$
watcher=
cleanup() {
	if [ -n "$watcher" ]; then
		kill -INT "$watcher" 2>/dev/null || true
		wait "$watcher" 2>/dev/null || true
	fi
	ip netns del "$ns" 2>/dev/null || true
	if [ -n "$keep" ]; then
		mkdir -p "$keep" && cp -r "$work"/. "$keep"/
	fi
	rm -rf "$work"
}
trap cleanup EXIT
go build -o "$work/kpc" ./cmd/kpc
kpc=$work/kpc

"$kpc" gen --services "$services" --endpoints "$endpoints" ${plain[@]+"${plain[@]}"} > "$work/cluster.yaml"
input=$work/cluster.yaml
if $dir; then
	# A file per Service: kpc gen writes each Service followed by its
	# slices, after the node context.
	mkdir "$work/cluster"
	awk -v out="$work/cluster" '
		function flush() {
			if (doc == "") return
			if (doc ~ /\nkind: Service\n/ || doc ~ /^kind: Service\n/) {
				if (file != "") close(file)
				n++; file = sprintf("%s/svc-%06d.yaml", out, n)
			} else if (file == "") {
				file = out "/node.yaml"
			}
			printf "---\n%s", doc > file
			doc = ""
		}
		/^---$/ { flush(); next }
		{ doc = doc $0 "\n" }
		END { flush() }
	' "$input"
	rm "$input"
	input=$work/cluster
fi
echo "bench-apply.sh: $services Services × $endpoints endpoints ($([ ${#plain[@]} -gt 0 ] && echo plain || echo mixed)), $($dir && echo "a file per Service" || echo "one file of $(du -m "$input" | cut -f1) MB")" >&2

# change K: replace the last number of one IPv4 endpoint address, keeping
# its length, at the K-th of --changes places spread over the input. The
# address is one that the node's rules use (not of a Service with an
# internal traffic policy of Local, whose endpoints are on other nodes),
# and the new address one the file does not hold, so that the Service
# keeps its number of endpoints.
change() {
	perl -e '
		my ($k, $count, $input) = @ARGV;
		my @files = ($input);
		if (-d $input) {
			opendir(my $d, $input) or die "$input: $!";
			@files = map { "$input/$_" } sort grep { /^svc-\d+\.yaml$/ } readdir($d);
		}
		# The used addresses of a file: kpc gen writes each Service
		# before its slices.
		sub used {
			my ($text) = @_;
			my ($off, $use, @at) = (0, 0);
			for my $doc (split /^---\n/m, $text) {
				$use = $doc !~ /internalTrafficPolicy: Local|clusterIP: None/ if $doc =~ /^kind: Service$/m;
				if ($use && $doc =~ /^kind: EndpointSlice$/m) {
					while ($doc =~ /addresses: \["10\.\d+\.\d+\.(\d+)"\]/g) {
						push @at, [$off + $-[1], $1];
					}
				}
				$off += length($doc) + 4;
			}
			return @at;
		}
		my ($file, $text, $pick);
		for my $i (0 .. $#files) {
			$file = $files[(int(@files * $k / ($count + 1)) + $i) % @files];
			open(my $in, "<", $file) or die "$file: $!";
			local $/; $text = <$in>; close($in);
			my @at = used($text);
			next unless @at;
			$pick = @files == 1 ? $at[int(@at * $k / ($count + 1))] : $at[0];
			last;
		}
		die "$input: no used IPv4 endpoint address\n" unless $pick;
		my ($pos, $old) = @$pick;
		my $prefix = substr($text, 0, $pos);
		$prefix =~ s/.*"//s;
		my ($lo, $hi) = (0, 9);
		($lo, $hi) = (10, 99) if length($old) == 2;
		($lo, $hi) = (100, 255) if length($old) == 3;
		my ($new) = grep { $_ != $old && index($text, "\"$prefix$_\"") < 0 } $lo .. $hi;
		die "$file: no free address beside $prefix$old\n" unless defined $new;
		open(my $fh, "+<", $file) or die "$file: $!";
		seek($fh, $pos, 0); print $fh $new; close($fh) or die "$file: $!";
	' "$1" "$changes" "$input"
}

# other K: another tool's commit, to a table of its own.
other() {
	if $foreign; then
		ip netns exec "$ns" nft add table inet "kpcb-other-$1"
	fi
}

# median prints the median of the numbers (milliseconds) on its input, in
# seconds from 1,000 ms on.
median() {
	sort -n | awk '{ v[NR] = $1 } END {
		if (!NR) exit
		m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
		if (m >= 1000) printf "%.2f s", m / 1000; else printf "%.1f ms", m
	}'
}

# One-shot applies.
ip netns add "$ns"
ip netns exec "$ns" ip link set lo up
mkdir "$work/state"
echo "one-shot kpc apply, the whole cluster:"
ip netns exec "$ns" "$kpc" apply --timings --state-dir "$work/state" -f "$input" 2>&1 | sed 's/^/  /'
: > "$work/oneshot"
for k in $(seq 1 "$changes"); do
	other "$k"
	change "$k"
	ip netns exec "$ns" "$kpc" apply --timings --state-dir "$work/state" -f "$input" > "$work/out" 2>&1
	grep -q 'incremental' "$work/out" || { echo "bench-apply.sh: change $k was not applied incrementally:" >&2; cat "$work/out" >&2; exit 1; }
	grep 'took' "$work/out" | sed 's/^/  /' | tee -a "$work/oneshot"
done
ip netns del "$ns"

# The watcher.
ip netns add "$ns"
ip netns exec "$ns" ip link set lo up
ip netns exec "$ns" "$kpc" apply --watch --state-dir "" -f "$input" > "$work/watch" 2>&1 &
watcher=$!
for _ in $(seq 1 900); do
	grep -q 'counted for updates' "$work/watch" && break
	if grep -q 'applied whole\|not valid\|error' "$work/watch" || ! kill -0 "$watcher" 2>/dev/null; then
		echo "bench-apply.sh: the watcher did not start counting updates:" >&2
		cat "$work/watch" >&2
		exit 1
	fi
	sleep 1
done
grep -q 'counted for updates' "$work/watch" || { echo "bench-apply.sh: the watcher was not ready in 900 s" >&2; exit 1; }
echo "kpc apply --watch:"
head -1 "$work/watch" | sed 's/^/  /'
for k in $(seq 1 "$changes"); do
	other "$k"
	change "$k"
	sleep "$pause"
done
pid=$(pgrep -P "$watcher" kpc || echo "$watcher")
echo "  peak RSS of the watcher: $(awk '/VmHWM/ { printf "%d MiB", $2 / 1024 }' "/proc/$pid/status")"
kill -INT "$watcher"
wait "$watcher" || true
watcher=
grep 'updated' "$work/watch" | sed 's/^/  /'
ip netns del "$ns"

updates=$(grep -c 'updated' "$work/watch" || true)
if [ "$updates" -ne "$changes" ]; then
	echo "bench-apply.sh: the watcher sent $updates updates for $changes changes" >&2
	exit 1
fi
oneshot=$(sed -n 's/.* \([0-9]*\) ms in the kernel.*/\1/p' "$work/oneshot" | median)
total=$(awk '{ s = 0; for (i = 1; i <= NF; i++) if ($(i + 1) == "ms" || $(i + 1) == "s") s += ($(i + 1) == "s" ? $i * 1000 : $i); print s }' "$work/oneshot" | median)
watch=$(sed -n 's/.* in \([0-9.]*\) ms since the first file event.*/\1/p' "$work/watch" | median)
wkernel=$(sed -n 's/.* kernel \([0-9.]*\) ms;.*/\1/p' "$work/watch" | median)
echo
echo "| apply of one changed Service among $services$($foreign && echo ", after another tool's commit") | median of $changes | of it in the kernel |"
echo "|---|---:|---:|"
echo "| one-shot \`kpc apply\` | $total | $oneshot |"
echo "| \`kpc apply --watch\`, first file event to the kernel's answer | $watch | $wkernel |"
