#!/usr/bin/env python3
"""QEMU 7.2 live migration over TLS-PSK: one invocation = one case x one repetition.

    bench/qemu_tls.py --case tls_precopy|tls_multifd2 --rep N --img IMG --scr DIR --res FILE.tsv
                      [--shared DIR] [--port PORT]

The shared anchor driver (/work/shared/bench/migbench.py) has no TLS case; this one is its
tcp_precopy / tcp_multifd2 with TLS added and nothing else changed. It imports migbench.py (from
--shared, $GMEM_SHARED_BENCH or <repo>/../shared/bench) and reuses its VM, QMP, warm-destination,
timing, recording and cmp code, so the rows it appends (`metric rep value unit note`, metric
prefixed with the case name) read exactly like migbench's:

  both QEMUs  -object tls-creds-psk,id=tls0,endpoint=server|client,dir=DIR[,username=qemu]
              DIR/keys.psk = "qemu:<64 hex digits>" (a fresh random 256-bit key per run)
  both        migrate-set-parameters tls-creds=tls0, max-bandwidth=100 GiB/s (+ multifd-channels 2)
  then        dst migrate-incoming tcp:127.0.0.1:PORT; src migrate; wait for both MIGRATION completed;
              cmp the destination backing file against the image.
Every QEMU PID is appended to <scr>/qemu.pids (by migbench's VM class), so a caller can kill
leftovers by PID.
"""
import argparse
import os
import secrets
import sys
import time

TLS_CASES = {
    # name: (capabilities, parameters)
    "tls_precopy": ({}, {}),
    "tls_multifd2": ({"multifd": True}, {"multifd-channels": 2}),
}


def shared_dir(arg):
    here = os.path.dirname(os.path.abspath(__file__))
    for d in (arg, os.environ.get("GMEM_SHARED_BENCH"), os.path.join(here, "..", "..", "shared", "bench")):
        if d and os.path.isfile(os.path.join(d, "migbench.py")):
            return os.path.abspath(d)
    raise SystemExit("qemu_tls.py: cannot find migbench.py: pass --shared DIR or set GMEM_SHARED_BENCH "
                     "(the shared QEMU anchor scripts, normally /work/shared/bench)")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--case", required=True, choices=list(TLS_CASES))
    ap.add_argument("--rep", default="1")
    ap.add_argument("--img", required=True)
    ap.add_argument("--scr", required=True)
    ap.add_argument("--res", required=True)
    ap.add_argument("--shared", default=None, help="directory of migbench.py and qmp.py")
    ap.add_argument("--port", type=int, default=14445)
    args = ap.parse_args()

    sys.path.insert(0, shared_dir(args.shared))
    import migbench as mb  # noqa: E402  (also puts qmp.py on the path)
    from qmp import wait_events  # noqa: E402

    os.makedirs(os.path.join(args.scr, "logs"), exist_ok=True)
    mb.SIZE = os.path.getsize(args.img)
    rec = mb.Recorder(args)
    caps, params = TLS_CASES[args.case]

    psk_dir = os.path.join(args.scr, "tls-psk")
    os.makedirs(psk_dir, mode=0o700, exist_ok=True)
    psk = os.path.join(psk_dir, "keys.psk")
    fd = os.open(psk, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("qemu:%s\n" % secrets.token_hex(32))
    server = ["-object", "tls-creds-psk,id=tls0,endpoint=server,dir=%s" % psk_dir]
    client = ["-object", "tls-creds-psk,id=tls0,endpoint=client,dir=%s,username=qemu" % psk_dir]

    img = args.img
    dst_path = os.path.join("/dev/shm", "anchor_dst")
    mb.prep_dst(dst_path, False)  # warm destination: pre-written with zeros, outside the timed window
    dst = mb.VM(args, "dst", dst_path, incoming="defer", extra=server)
    src = mb.VM(args, "src", img, extra=client)
    try:
        for vm in (dst, src):
            mb.set_caps(vm, caps)
            vm.q.cmd("migrate-set-parameters", **dict(params, **{"max-bandwidth": mb.BIG_BW, "tls-creds": "tls0"}))
        uri = "tcp:127.0.0.1:%d" % args.port
        dst.q.cmd("migrate-incoming", uri=uri)
        c0 = (mb.cpu_s(src.p.pid), mb.cpu_s(dst.p.pid))
        lo0 = mb.lo_tx_bytes()
        t0 = time.monotonic()
        src.q.cmd("migrate", uri=uri)
        ts, td = wait_events([(src.q, "MIGRATION", mb.migration_done), (dst.q, "MIGRATION", mb.migration_done)], 600)
        c1 = (mb.cpu_s(src.p.pid), mb.cpu_s(dst.p.pid))
        lo1 = mb.lo_tx_bytes()
        mb.check_completed(src)
        mb.check_completed(dst)
        qm = src.q.cmd("query-migrate")
        wall = td - t0
        rec("wall_src_done", "%.3f" % (ts - t0), "s", "migrate cmd -> source completed event")
        rec("wall_dst_done", "%.3f" % wall, "s", "migrate cmd -> destination completed event")
        mb.ram_stats(rec, qm, wall)
        rec("loopback_bytes", lo1 - lo0, "B", "/proc/net/dev lo tx delta (TLS records included)")
        rec("cpu_src", "%.2f" % (c1[0] - c0[0]), "cpu-s")
        rec("cpu_dst", "%.2f" % (c1[1] - c0[1]), "cpu-s")
        rec("cpu_total_util", "%.2f" % ((c1[0] - c0[0] + c1[1] - c0[1]) / wall), "cores")
        rec("src_runstate", 0, "-", src.q.cmd("query-status")["status"])
    finally:
        src.stop()
        dst.stop()
        try:
            os.unlink(psk)
        except OSError:
            pass
    if not mb.verify(rec, dst_path, img):
        raise SystemExit("qemu_tls.py: destination differs from the image")


if __name__ == "__main__":
    main()
