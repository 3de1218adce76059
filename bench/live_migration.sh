#!/usr/bin/env bash
# bench/live_migration.sh: one live migration of a reference VM over TCP on loopback, measured.
#
#   bench/live_migration.sh [--mem 1G] [--slot gmem|hva] [--workload idle|dirty|image]
#                           [--compress zstd|none] [--channels N] [--paused] [--warm]
#                           [--repeat N] [--verify-memory] [--private PCT]
#
# --workload image fills guest memory from the project's anchor image (gen_image.py, generated
# once into /dev/shm: 35 % zero, 25 % text, 20 % struct-like, 20 % random pages) and keeps the
# vCPUs idle; dirty runs the guest's dirtying workload (rate-limited, fixed seed).
# --paused pauses the source VM before `send` (the anchors' "paused guest" case).
# --warm writes and frees guest-size memory just before each run, so that the target's fresh
# guest_memfd pages are not "cold" (this machine's free-page reporting makes the first touch of
# memory idle for > 2 s cost ~2.6 µs a page: /work/shared/bench/RESULTS.md, "Cold pages").
# --private PCT makes it a CoCo guest: both VMMs get an emulated platform key (generated once per
# invocation with `gmem-vmm platform-keygen` into the temp dir), the source runs with
# `--coco emulated --private PCT` (PCT % of guest RAM past the first 2 MiB starts private, in
# 64 KiB runs chosen from the seed), and the private pages travel through the guest agents (sealed
# blobs) while the shared ones go as usual. The target learns its CoCo mode from the migrated state.
# Prints one line per run: guest MiB/s (guest RAM / total send time), downtime, wire bytes, and
# the send summary as JSON. Needs a built tree (cmake --build build) and /dev/kvm.
set -euo pipefail
cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.."

mem=1G slot=gmem workload=image compress=zstd channels=2 paused=0 warm=0 repeat=1 verify=() private=
while (($#)); do
  case "$1" in
    --mem) mem="$2"; shift 2 ;;
    --slot) slot="$2"; shift 2 ;;
    --workload) workload="$2"; shift 2 ;;
    --compress) compress="$2"; shift 2 ;;
    --channels) channels="$2"; shift 2 ;;
    --paused) paused=1; shift ;;
    --warm) warm=1; shift ;;
    --repeat) repeat="$2"; shift 2 ;;
    --verify-memory) verify=(--verify-memory); shift ;;
    --private) private="$2"; shift 2 ;;
    *) echo "usage: see the header of $0" >&2; exit 2 ;;
  esac
done

if [[ -n "$private" ]] && ! [[ "$private" =~ ^[0-9]+$ && "$private" -le 100 ]]; then
  echo "--private: a percentage, 0..100" >&2; exit 2
fi

bin="$PWD/build/bin"
[[ -x "$bin/gmem-migrate" && -x "$bin/gmem-vmm" ]] || { echo "build first: cmake --build build" >&2; exit 2; }
work="$(mktemp -d /tmp/gmem-bench.XXXXXX)"
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

mib=$(numfmt --from=iec "$mem")
mib=$((mib / 1048576))
guest=(--workload idle:rate=1000)
case "$workload" in
  idle) ;;
  dirty) guest=(--workload dirty:rate=3000 --seed 42) ;;
  image)
    image="/dev/shm/gmem-bench-image-$mem"
    if [[ ! -f "$image" ]]; then
      python3 /work/shared/bench/gen_image.py --size "$mem" --seed 1 --out "$image" >/dev/null
    fi
    guest=(--workload idle:rate=1000 --init-from "$image") ;;
  *) echo "unknown workload $workload" >&2; exit 2 ;;
esac

coco_src=() coco_dst=()
if [[ -n "$private" ]]; then
  "$bin/gmem-vmm" platform-keygen --out "$work/platform.key" >/dev/null
  coco_src=(--coco emulated --platform-key "$work/platform.key" --private "$private")
  coco_dst=(--platform-key "$work/platform.key")
fi

control() {  # control SOCKET JSON: one request on a VMM control socket
  python3 -c 'import socket,sys
s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall((sys.argv[2]+"\n").encode())
r=s.recv(65536).decode(); sys.exit(0 if "\"ok\":true" in r else 1)' "$1" "$2"
}

"$bin/gmem-migrate" -q keygen --out "$work/key"
for ((run = 1; run <= repeat; run++)); do
  rm -f "$work"/*.sock
  "$bin/gmem-vmm" run --mem "$mem" --slot "$slot" "${guest[@]}" "${coco_src[@]}" --control "$work/src.sock" \
    >"$work/src.out" 2>"$work/src.err" &
  pids+=($!)
  "$bin/gmem-vmm" run --incoming "${coco_dst[@]}" --control "$work/dst.sock" >"$work/dst.out" 2>"$work/dst.err" &
  pids+=($!)
  for _ in $(seq 300); do [[ -S "$work/src.sock" && -S "$work/dst.sock" ]] && break; sleep 0.1; done
  sleep 1
  port=$((20000 + RANDOM % 40000))
  "$bin/gmem-migrate" recv --vmm "$work/dst.sock" --from "tcp:127.0.0.1:$port" --key-file "$work/key" \
    --timeout 60 --json >"$work/recv.out" 2>"$work/recv.err" &
  pids+=($!)
  recv_pid=$!
  ((paused)) && control "$work/src.sock" '{"id":1,"cmd":"pause"}'
  if ((warm)); then
    dd if=/dev/zero of=/dev/shm/gmem-bench-warm bs=1M count=$((mib + mib / 4)) status=none
    rm -f /dev/shm/gmem-bench-warm
  fi
  "$bin/gmem-migrate" send --vmm "$work/src.sock" --to "tcp:127.0.0.1:$port" --key-file "$work/key" \
    --compress "$compress" --channels "$channels" "${verify[@]}" --json >"$work/send.out"
  wait "$recv_pid" || { cat "$work/recv.err" >&2; exit 1; }
  control "$work/dst.sock" '{"id":1,"cmd":"quit"}' || true
  wait
  pids=()
  python3 - "$work/send.out" "$mib" "$slot" "$workload" "$compress" "$channels" "$paused" "$warm" "$private" <<'EOF'
import json, sys
events = [json.loads(l) for l in open(sys.argv[1])]
done = [e for e in events if e["event"] == "complete"][0]
mib = int(sys.argv[2])
secs = done["total_ms"] / 1000
private = f" private={sys.argv[9]}%" if sys.argv[9] else ""
agent = ""
if done.get("private_pages"):
    agent = (f", {done['private_pages']} private pages via the agent ({done.get('agent_round_trips', 0)} round trips, "
             f"{done.get('agent_ms', 0)} ms)")
print(f"mem={mib}MiB slot={sys.argv[3]} workload={sys.argv[4]}{private} compress={sys.argv[5]} channels={sys.argv[6]} "
      f"paused={sys.argv[7]} warm={sys.argv[8]}: {mib / secs:.0f} MiB/s of guest memory, "
      f"total {secs:.2f} s, downtime {done['downtime_ms']} ms, {done['passes']} passes ({done['stop_reason']}), "
      f"wire {done['wire_bytes'] / 2**20:.1f} MiB ({done['compression_ratio']:.2f}x){agent}")
print("  " + json.dumps(done))
EOF
done
