#!/usr/bin/env python3
"""bench/compare: gmemkit against QEMU 7.2, side by side, on the same memory, in the same run.

Run it through the `bench/compare` wrapper (or directly; python3 standard library only):

    bench/compare [--reps N] [--cases a,b,c] [--quick] [--no-build] [--build-dir DIR] [--out FILE]
                  [--downtime-ms MS] [--no-rss] [--keep] [--list]

It builds the tools (default preset), installs what the QEMU side needs (qemu-system-x86, zstd,
xxhash, time) when missing, generates the anchor image once into /dev/shm, then runs every case
REPS times, interleaved (rep 1: all cases, rep 2: all cases, ...; QEMU first in odd reps, ours
first in even reps), verifies every run, prints one table of ratios (ours / QEMU) and writes
bench/RESULTS.md (only for a full run, or wherever --out says). See bench/README.md.

The QEMU side is /work/shared/bench/migbench.py (found as $GMEM_SHARED_BENCH or
<repo>/../shared/bench) plus bench/qemu_tls.py for TLS-PSK; our side is gmem-vmm,
gmem-migrate and gmem-snapshot from the build directory.
"""
import argparse
import collections
import datetime
import json
import math
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HERE = os.path.join(REPO, "bench")
GIB = 1 << 30
MIB = 1 << 20
IMG_SHA256_2G_SEED1 = "934778f1e1d9b0b3462be1921fa5a7d5ee9191c04a3a7fe5b47929b120ece781"
DIRTY_WS_PAGES = 131072          # 512 MiB working set, as the QEMU dirty guest's ws=512
PAGE = 4096

# ---------------------------------------------------------------------------------------------
# cases: name -> (QEMU cases it is compared with, description)
CASES = collections.OrderedDict([
    ("plain",      (["tcp_precopy", "tcp_multifd2"], "live, paused 2 GiB guest, hva slots, --insecure-no-encryption")),
    ("enc",        (["tls_precopy", "tls_multifd2", "tcp_multifd2"], "live, paused guest, hva slots, key file")),
    ("zstd",       (["tcp_multifd2_zstd1"], "live, paused guest, hva slots, insecure, --compress zstd:1")),
    ("plain_none", ([], "as plain with --compress none: checks that auto (plain's default) keeps up")),
    ("plain_cold", (["tcp_precopy_colddst"], "as plain into a cold target: no --mem, memory faults in as the stream "
                    "arrives, after %d s idle (freed memory handed back to the outer host), as QEMU's colddst" % 15)),
    ("plain_gmem", (["tcp_precopy", "tcp_multifd2"], "as plain, gmem slots (no dirty log)")),
    ("enc_gmem",   (["tls_precopy", "tls_multifd2", "tcp_multifd2"], "as enc, gmem slots")),
    ("snap_raw",   (["file_cat"], "snapshot save + restore, paused guest, insecure, --compress none")),
    ("snap_zstd",  (["file_zstd1"], "snapshot save + restore, paused guest, insecure, --compress zstd:1")),
    ("dirty64",    (["dirty64_precopy"], "live, guest dirtying 64 MiB/s of a 512 MiB working set")),
    ("dirty256",   (["dirty256_precopy"], "live, guest dirtying 256 MiB/s of a 512 MiB working set")),
    ("dirty1024",  (["dirty1024_precopy"], "live, guest dirtying as fast as it can (asked 1024 MiB/s)")),
    ("rss4g",      ([], "peak RSS of send and recv, paused 4 GiB guest, plain, hva (once)")),
])
QUICK_CASES = ["plain", "enc", "zstd", "snap_raw", "dirty256"]
TLS_QEMU = ("tls_precopy", "tls_multifd2")
DIRTY_MIBS = {"dirty64": 64, "dirty256": 256, "dirty1024": 1024}
COLD_WAIT_S = 15                 # migbench's COLD_WAIT: longer than the host's free-page reporting delay


def log(msg):
    print("[compare %s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


class BenchError(Exception):
    pass


# ---------------------------------------------------------------------------------------------
# processes: everything started is tracked by PID and stopped by PID on exit


class Proc:
    """A child process whose exit is reaped by a thread (wait4: exit time, rusage)."""

    def __init__(self, procs, name, argv, stdout_path, stderr_path, line_reader=False, env=None):
        self.name, self.argv = name, argv
        self.lines = []           # (monotonic, text) of stdout when line_reader
        self.t_exit = None
        self.rusage = None
        self.status = None
        self.done = threading.Event()
        self.err_path = stderr_path
        err = open(stderr_path, "w")
        if line_reader:
            out = subprocess.PIPE
            self.out_log = open(stdout_path, "w")
        else:
            out = open(stdout_path, "w")
        self.t_spawn = time.monotonic()
        self.p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env)
        err.close()
        if not line_reader:
            out.close()
        self.pid = self.p.pid
        procs.add(self)
        if line_reader:
            self.reader = threading.Thread(target=self._read, daemon=True)
            self.reader.start()
        else:
            self.reader = None
        threading.Thread(target=self._reap, daemon=True).start()

    def _read(self):
        for raw in self.p.stdout:
            t = time.monotonic()
            line = raw.decode(errors="replace").rstrip("\n")
            self.lines.append((t, line))
            self.out_log.write(line + "\n")
            self.out_log.flush()
        self.out_log.close()

    def _reap(self):
        _, status, ru = os.wait4(self.pid, 0)
        self.t_exit = time.monotonic()
        self.rusage, self.status = ru, status
        self.p.returncode = os.waitstatus_to_exitcode(status)   # Popen must not wait again
        self.done.set()

    @property
    def rc(self):
        return self.p.returncode if self.done.is_set() else None

    def alive(self):
        return not self.done.is_set()

    def wait(self, timeout):
        if not self.done.wait(timeout):
            raise BenchError("%s did not finish within %d s" % (self.name, timeout))
        if self.reader:
            self.reader.join(10)
        return self.p.returncode

    def stderr_tail(self, n=8):
        try:
            with open(self.err_path) as f:
                return "".join(f.readlines()[-n:]).strip()
        except OSError:
            return ""

    def json_events(self):
        out = []
        for t, line in self.lines:
            try:
                d = json.loads(line)
            except ValueError:
                continue
            if isinstance(d, dict):
                out.append((t, d))
        return out

    def event(self, name):
        for t, d in self.json_events():
            if d.get("event") == name:
                return t, d
        return None, None

    def stop(self, grace=5.0):
        if not self.alive():
            return
        try:
            os.kill(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        if not self.done.wait(grace):
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.done.wait(5)


class Procs:
    def __init__(self):
        self.all = []
        self.qemu_pid_files = []
        self.lock = threading.Lock()

    def add(self, p):
        with self.lock:
            self.all.append(p)

    def cleanup(self):
        for p in reversed(self.all):
            if p.alive():
                p.stop(grace=3.0)
        # QEMUs started by migbench.py / qemu_tls.py: their PIDs are in <scr>/qemu.pids
        for path in self.qemu_pid_files:
            try:
                pids = [int(x) for x in open(path).read().split()]
            except (OSError, ValueError):
                continue
            for pid in pids:
                try:
                    comm = open("/proc/%d/comm" % pid).read().strip()
                except OSError:
                    continue
                if comm.startswith("qemu-system"):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass


# ---------------------------------------------------------------------------------------------
# small helpers


def ctl(sock, cmd, timeout=120.0, **kw):
    """One request on a gmem-vmm control socket; returns the reply (raises unless ok)."""
    req = dict(id=1, cmd=cmd, **kw)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(sock)
        s.sendall((json.dumps(req) + "\n").encode())
        buf = b""
        while not buf.endswith(b"\n"):
            d = s.recv(1 << 20)
            if not d:
                break
            buf += d
    finally:
        s.close()
    try:
        rep = json.loads(buf.decode())
    except ValueError:
        raise BenchError("%s: bad reply %r" % (cmd, buf[:200]))
    if not rep.get("ok"):
        raise BenchError("%s on %s: %s" % (cmd, sock, rep.get("error")))
    return rep


def lo_tx_bytes():
    with open("/proc/net/dev") as f:
        for line in f:
            if line.strip().startswith("lo:"):
                return int(line.split(":", 1)[1].split()[8])
    return 0


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def listening(port):
    want = ":%04X" % port
    for fn in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(fn) as f:
                next(f)
                for line in f:
                    p = line.split()
                    if p[1].endswith(want) and p[3] == "0A":
                        return True
        except OSError:
            pass
    return False


def wait_for(pred, timeout, what, proc=None):
    deadline = time.monotonic() + timeout
    while not pred():
        if proc is not None and not proc.alive():
            raise BenchError("%s exited (rc %s) while waiting for %s: %s" % (proc.name, proc.rc, what, proc.stderr_tail()))
        if time.monotonic() > deadline:
            raise BenchError("timed out waiting for %s" % what)
        time.sleep(0.01)


def med_min_max(vs):
    return statistics.median(vs), min(vs), max(vs)


def fmt_num(x, fmt):
    return fmt % x


def cell(vs, fmt="%.0f"):
    if not vs:
        return "—"
    m, lo, hi = med_min_max(vs)
    if len(vs) == 1 or lo == hi:
        return fmt % m
    return (fmt + " (" + fmt + "–" + fmt + ")") % (m, lo, hi)


def proc_status(pid):
    d = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmHWM", "VmRSS", "RssAnon", "RssFile", "RssShmem"):
                    d[k] = int(v.split()[0])
    except OSError:
        pass
    return d


class RssSampler(threading.Thread):
    """Samples /proc/PID/status of a process (or of the child of a /usr/bin/time wrapper)."""

    def __init__(self, proc, via_time=False, period=0.02):
        super().__init__(daemon=True)
        self.proc, self.via_time, self.period = proc, via_time, period
        self.peak = collections.defaultdict(int)
        self.stop_ev = threading.Event()

    def target_pid(self):
        if not self.via_time:
            return self.proc.pid
        try:
            kids = open("/proc/%d/task/%d/children" % (self.proc.pid, self.proc.pid)).read().split()
            return int(kids[0]) if kids else None
        except (OSError, ValueError):
            return None

    def run(self):
        while not self.stop_ev.is_set() and self.proc.alive():
            pid = self.target_pid()
            if pid:
                for k, v in proc_status(pid).items():
                    self.peak[k] = max(self.peak[k], v)
            time.sleep(self.period)


def parse_time_v(path):
    out = {}
    try:
        for line in open(path):
            line = line.strip()
            if line.startswith("Maximum resident set size"):
                out["maxrss_kib"] = int(line.rsplit(":", 1)[1])
            elif line.startswith("Elapsed (wall clock)"):
                out["elapsed"] = line.rsplit(": ", 1)[1]
            elif line.startswith("User time"):
                out["user_s"] = float(line.rsplit(":", 1)[1])
            elif line.startswith("System time"):
                out["sys_s"] = float(line.rsplit(":", 1)[1])
    except OSError:
        pass
    return out


# ---------------------------------------------------------------------------------------------
# the run context: results, commands, scratch


class Ctx:
    def __init__(self, args):
        self.args = args
        self.procs = Procs()
        self.scr = tempfile.mkdtemp(prefix="gmem-compare.", dir="/tmp")
        self.qscr = os.path.join(self.scr, "qemu")
        os.makedirs(os.path.join(self.qscr, "logs"), exist_ok=True)
        os.makedirs(os.path.join(self.scr, "logs"), exist_ok=True)
        self.procs.qemu_pid_files.append(os.path.join(self.qscr, "qemu.pids"))
        self.qemu_tsv = os.path.join(self.scr, "qemu.tsv")
        self.ours_tsv = os.path.join(self.scr, "ours.tsv")
        # data[key][metric] = [values]; key "qemu:CASE" or "ours:CASE"
        self.data = collections.defaultdict(lambda: collections.defaultdict(list))
        self.notes = collections.defaultdict(list)   # key -> notes (strings)
        self.units = {}
        self.failures = []                           # (key, rep, message)
        self.commands = collections.OrderedDict()    # label -> command text (first use)
        self.incoming_mem = None                     # True: --mem accepted on incoming; False: refused
        self.warnings = []
        self.seq = 0
        self.qemu_running = False

    def rec(self, key, rep, metric, value, unit, note=""):
        self.data[key][metric].append(value)
        self.units[(key, metric)] = unit
        with open(self.ours_tsv if key.startswith("ours:") else self.qemu_tsv, "a") as f:
            f.write("%s.%s\t%s\t%s\t%s\t%s\n" % (key.split(":", 1)[1], metric, rep, value, unit, note))

    def cmd(self, label, argv):
        if label not in self.commands:
            self.commands[label] = " ".join(shlex.quote(a) for a in argv)

    def logpath(self, name):
        self.seq += 1
        return os.path.join(self.scr, "logs", "%03d_%s" % (self.seq, name))

    def spawn(self, name, argv, line_reader=False, label=None):
        if label:
            self.cmd(label, argv)
        base = self.logpath(name)
        return Proc(self.procs, name, argv, base + ".out", base + ".err", line_reader=line_reader)


# ---------------------------------------------------------------------------------------------
# setup: packages, build, image


def ensure_packages(args):
    pk = "qemu-system-x86 zstd xxhash time"
    script = ('source scripts/lib/deps.sh; '
              + ('GMEM_PACKAGES+=(%s); ' % pk if not args.no_build else 'GMEM_PACKAGES=(%s); ' % pk)
              + 'gmem_ensure_packages')
    r = subprocess.run(["bash", "-c", script], cwd=REPO)
    if r.returncode != 0:
        raise BenchError("installing packages failed (see above)")
    for tool in ("qemu-system-x86_64", "zstd", "xxhsum", "cmp"):
        if not shutil.which(tool):
            raise BenchError("%s not found after the package step" % tool)
    if not os.access("/usr/bin/time", os.X_OK):
        raise BenchError("/usr/bin/time not found (package 'time')")


def build(args):
    if args.no_build:
        return
    log("building (cmake --preset default; cmake --build %s --target gmem-vmm gmem-migrate gmem-snapshot)" % args.build_dir)
    if args.build_dir == os.path.join(REPO, "build"):
        cfg = ["cmake", "--preset", "default"]
    else:
        cfg = ["cmake", "-S", REPO, "-B", args.build_dir, "--preset", "default"]
    for argv in (cfg, ["cmake", "--build", args.build_dir, "--target", "gmem-vmm", "gmem-migrate", "gmem-snapshot"]):
        r = subprocess.run(argv, cwd=REPO)
        if r.returncode != 0:
            raise BenchError("build failed: %s" % " ".join(argv))


def bins(args):
    b = os.path.join(args.build_dir, "bin")
    out = {}
    for name in ("gmem-vmm", "gmem-migrate", "gmem-snapshot"):
        path = os.path.join(b, name)
        if not os.access(path, os.X_OK):
            raise BenchError("%s missing: build first (or drop --no-build)" % path)
        out[name] = path
    return out


def shared_bench():
    for d in (os.environ.get("GMEM_SHARED_BENCH"), os.path.join(REPO, "..", "shared", "bench")):
        if d and os.path.isfile(os.path.join(d, "migbench.py")) and os.path.isfile(os.path.join(d, "gen_image.py")):
            return os.path.abspath(d)
    raise BenchError("the shared QEMU benchmark scripts (migbench.py, gen_image.py, qmp.py) were not found: "
                     "set GMEM_SHARED_BENCH=DIR (normally /work/shared/bench) or put them at <repo>/../shared/bench")


def ensure_image(ctx, shared, size_gib, check_hash=False):
    path = "/dev/shm/gmem-bench-image-%dG" % size_gib
    want = size_gib * GIB
    if os.path.exists(path) and os.path.getsize(path) == want:
        if check_hash and size_gib == 2:
            import hashlib
            t = time.monotonic()
            h = hashlib.sha256()
            with open(path, "rb") as f:
                while True:
                    b = f.read(8 << 20)
                    if not b:
                        break
                    h.update(b)
            if h.hexdigest() != IMG_SHA256_2G_SEED1:
                log("%s has the wrong contents (sha256 %s): regenerating" % (path, h.hexdigest()[:16]))
            else:
                log("image %s present, sha256 matches the anchors' (%.1f s)" % (path, time.monotonic() - t))
                return path
        else:
            log("image %s present (%d GiB)" % (path, size_gib))
            return path
    log("generating %s (gen_image.py --size %dG --seed 1; ~12 s per GiB... be patient)" % (path, size_gib))
    tmp = path + ".tmp-%d" % os.getpid()
    argv = [sys.executable, os.path.join(shared, "gen_image.py"), "--size", "%dG" % size_gib, "--seed", "1", "--out", tmp]
    ctx.cmd("image %dG" % size_gib, argv[1:])
    p = ctx.spawn("gen_image_%dG" % size_gib, argv)
    try:
        if p.wait(900) != 0:
            raise BenchError("gen_image.py failed: %s" % p.stderr_tail())
        os.rename(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


# ---------------------------------------------------------------------------------------------
# the QEMU side


def run_qemu(ctx, shared, qcase, rep, img):
    if qcase in TLS_QEMU:
        argv = [sys.executable, os.path.join(HERE, "qemu_tls.py"), "--case", qcase, "--rep", str(rep), "--img", img,
                "--scr", ctx.qscr, "--res", ctx.qemu_tsv + ".raw", "--shared", shared, "--port", str(free_port())]
    else:
        argv = [sys.executable, os.path.join(HERE, "qemu_migbench.py"), "--shared", shared, "--case", qcase,
                "--rep", str(rep), "--img", img, "--scr", ctx.qscr, "--res", ctx.qemu_tsv + ".raw"]
    ctx.cmd("qemu " + qcase, argv[1:])
    ctx.qemu_running = True
    raw = ctx.qemu_tsv + ".raw"
    before = os.path.getsize(raw) if os.path.exists(raw) else 0
    log("rep %d  QEMU %s" % (rep, qcase))
    p = ctx.spawn("qemu_%s_r%d" % (qcase, rep), argv)
    rc = p.wait(900)
    ctx.qemu_running = False
    rows = []
    if os.path.exists(raw):
        with open(raw) as f:
            f.seek(before)
            rows = [l.rstrip("\n").split("\t") for l in f if l.strip()]
    key = "qemu:" + qcase
    got = {}
    for r in rows:
        if len(r) < 4 or "." not in r[0]:
            continue
        case, metric = r[0].split(".", 1)
        if case != qcase:
            continue
        try:
            v = float(r[2])
        except ValueError:
            if r[2] != "" and r[3] == "-":
                ctx.notes[key].append("rep %d %s: %s" % (rep, metric, r[4] if len(r) > 4 else r[2]))
            continue
        if r[3] == "-":
            if len(r) > 4 and r[4]:
                ctx.notes[key].append("rep %d %s: %s" % (rep, metric, r[4]))
            continue
        got[metric] = v
    ok = rc == 0 and got.get("verify_match") == 1 and got.get("converged", 1) == 1
    if not ok:
        msg = "rc %s, verify %s: %s" % (rc, got.get("verify_match"), p.stderr_tail(4))
        ctx.failures.append((key, rep, msg))
        log("  QEMU %s FAILED: %s" % (qcase, msg))
        ctx.rec(key, rep, "failed", 1, "bool")
        return
    for metric, v in got.items():
        ctx.rec(key, rep, metric, v, next((r[3] for r in rows if r[0] == qcase + "." + metric), ""))
    # a guest-MB/s figure comparable with ours for every kind of case
    if "wall_dst_done" in got:
        ctx.rec(key, rep, "guest_MBps", round(ctx.guest_mb / got["wall_dst_done"], 1), "MB/s")
    if "save_wall_file_done" in got:
        ctx.rec(key, rep, "save_MBps", round(ctx.guest_mb / got["save_wall_file_done"], 1), "MB/s")
        if "save_sync_after" in got:
            ctx.rec(key, rep, "save_sync_MBps", round(ctx.guest_mb / (got["save_wall_file_done"] + got["save_sync_after"]), 1), "MB/s")
    if "restore_wall_dst_done" in got:
        ctx.rec(key, rep, "restore_MBps", round(ctx.guest_mb / got["restore_wall_dst_done"], 1), "MB/s")
    log("  QEMU %s: %s" % (qcase, summary_line(ctx, key)))


# ---------------------------------------------------------------------------------------------
# our side


def drop_from_page_cache(path):
    """Written back, then out of the page cache: the next read comes from the device."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def read_through_page_cache(path):
    """Reads the whole file once through the page cache (untimed), leaving it resident."""
    with open(path, "rb", buffering=0) as f:
        buf = bytearray(8 << 20)
        while f.readinto(buf):
            pass


def start_source(ctx, name, mem, slot, workload, img, extra=()):
    sock = os.path.join(ctx.scr, "%s-src.sock" % name)
    argv = [ctx.bin["gmem-vmm"], "run", "--mem", mem, "--slot", slot, "--workload", workload, "--seed", "1",
            "--init-from", img, "--control", sock] + list(extra)
    p = ctx.spawn("%s_src_vmm" % name, argv, label="source VMM (%s)" % name)
    wait_for(lambda: os.path.exists(sock), 300, "the source VMM's control socket", p)
    return p, sock


def warm_memory(ctx, mem_bytes):
    """Write and free guest-size memory (only when --mem is refused on incoming VMMs)."""
    path = os.path.join("/dev/shm", "gmem-compare-warm-%d" % os.getpid())
    try:
        with open(path, "wb") as f:
            chunk = b"\0" * (8 << 20)
            for _ in range(int(mem_bytes * 1.25) // len(chunk)):
                f.write(chunk)
    finally:
        if os.path.exists(path):
            os.unlink(path)


def start_target(ctx, name, mem, cold=False):
    """An incoming VMM; with --mem it pre-creates and pre-populates the memory (warm destination).
    cold: no --mem, started after COLD_WAIT_S idle, so the memory it creates when the stream
    arrives faults in from the outer host (migbench's colddst policy)."""
    sock = os.path.join(ctx.scr, "%s-dst.sock" % name)
    if cold:
        time.sleep(COLD_WAIT_S)
        p = ctx.spawn("%s_dst_vmm" % name, [ctx.bin["gmem-vmm"], "run", "--incoming", "--control", sock],
                      label="target VMM (cold)")
        wait_for(lambda: os.path.exists(sock), 60, "the target VMM's control socket", p)
        return p, sock
    if ctx.incoming_mem is not False:
        argv = [ctx.bin["gmem-vmm"], "run", "--incoming", "--mem", mem, "--control", sock]
        p = ctx.spawn("%s_dst_vmm" % name, argv, label="target VMM")
        deadline = time.monotonic() + 300
        while not os.path.exists(sock) and p.alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        if os.path.exists(sock):
            ctx.incoming_mem = True
            return p, sock
        if p.alive():
            raise BenchError("target VMM: no control socket after 300 s")
        err = p.stderr_tail()
        if ctx.incoming_mem is None and ("--mem" in err or "mem" in err.lower()):
            ctx.incoming_mem = False
            msg = ("gmem-vmm refused `run --incoming --mem`: targets start without pre-populated memory "
                   "(cold-ish destination; the harness writes and frees guest-size memory before each run instead). "
                   "stderr: %s" % err.splitlines()[-1] if err else "")
            ctx.warnings.append(msg)
            log("WARNING: " + msg)
        else:
            raise BenchError("target VMM failed: %s" % err)
    argv = [ctx.bin["gmem-vmm"], "run", "--incoming", "--control", sock]
    p = ctx.spawn("%s_dst_vmm" % name, argv, label="target VMM (no --mem fallback)")
    wait_for(lambda: os.path.exists(sock), 60, "the target VMM's control socket", p)
    warm_memory(ctx, parse_size(mem))
    return p, sock


def parse_size(s):
    m = re.fullmatch(r"(\d+)([KMG]?)", s)
    return int(m.group(1)) << {"": 0, "K": 10, "M": 20, "G": 30}[m.group(2)]


def security_flags(ctx, mode):
    if mode == "enc":
        return ["--key-file", ctx.key_file]
    return ["--insecure-no-encryption"]


def stop_vmm(proc, sock):
    if proc.alive():
        try:
            ctl(sock, "quit", timeout=10)
        except Exception:
            pass
        try:
            proc.wait(15)
        except BenchError:
            proc.stop()


def measure_dirty_rate(ctx, sock, window=1.0):
    """Distinct pages dirtied (KVM dirty log, hva slots) and steps (= page writes) over WINDOW s."""
    ctl(sock, "dirty-log")
    s0 = sum(v["step"] for v in ctl(sock, "query")["vcpus"])
    t0 = time.monotonic()
    time.sleep(window)
    d = ctl(sock, "dirty-log")
    s1 = sum(v["step"] for v in ctl(sock, "query")["vcpus"])
    dt = time.monotonic() - t0
    distinct = sum(x.get("count", 0) for x in d.get("slots", []))
    return distinct * PAGE / MIB / dt, (s1 - s0) * PAGE / MIB / dt


def calibrate_dirty_rate(ctx, sock, mibs, rate, tries=3, tol=0.10):
    """Closed loop on the guest's rate limiter (`set-rate`): measure distinct MiB/s over 1 s and
    correct the rate until it is within TOL of MIBS, or the guest runs as fast as it can (it then
    falls short of the steps asked, or the rate is 0). Returns (distinct, writes, rate)."""
    distinct, writes = measure_dirty_rate(ctx, sock)
    for _ in range(tries):
        if rate == 0 or abs(distinct - mibs) <= tol * mibs:
            break
        steps_s = writes * MIB / PAGE
        if steps_s < 0.9 * rate and distinct < mibs:
            break                                    # the guest cannot go faster
        new = int(round(rate * equiv_steps(mibs) / max(1.0, equiv_steps(distinct))))
        rate = max(1, new)
        ctl(sock, "set-rate", rate=rate)
        time.sleep(0.3)
        distinct, writes = measure_dirty_rate(ctx, sock)
    return distinct, writes, rate


def equiv_steps(mibs):
    """Uniform random page picks per s that touch MIBS MiB/s of distinct pages in 1 s."""
    d = min(mibs * MIB / PAGE, DIRTY_WS_PAGES * 0.999)
    return -DIRTY_WS_PAGES * math.log(1.0 - d / DIRTY_WS_PAGES)


def dirty_rate_for(mibs):
    """Steps/s (one pseudo-random page of the working set per step) whose distinct dirtied pages
    over a 1 s window amount to MIBS MiB/s: D = WS (1 - exp(-R / WS)). 0 (as fast as the guest
    runs) when D is at or beyond the working set per second."""
    d = mibs * MIB / PAGE
    if d >= DIRTY_WS_PAGES * 0.999:
        return 0
    return int(round(-DIRTY_WS_PAGES * math.log(1.0 - d / DIRTY_WS_PAGES)))


def ours_live(ctx, case, rep, slot, mode, img, mem="2G", compress=None, dirty_mibs=None, timev=False, cold=False):
    key = "ours:" + case
    name = "%s_r%d" % (case, rep)
    src = dst = recv = send = None
    src_sock = dst_sock = None
    try:
        if dirty_mibs is not None:
            rate = dirty_rate_for(dirty_mibs)
            workload = "dirty:rate=%d,pages=%d,words=1" % (rate, DIRTY_WS_PAGES)
        else:
            workload = "idle:rate=1000"
        src, src_sock = start_source(ctx, name, mem, slot, workload, img)
        dst, dst_sock = start_target(ctx, name, mem, cold=cold)
        src_digest = None
        if dirty_mibs is None:
            ctl(src_sock, "pause")
            src_digest = ctl(src_sock, "digest")
        else:
            time.sleep(1.0)                                   # steady state, as migbench
            distinct, writes, rate = calibrate_dirty_rate(ctx, src_sock, dirty_mibs, rate)
            workload = "dirty:rate=%d,pages=%d,words=1" % (rate, DIRTY_WS_PAGES)
            ctx.rec(key, rep, "rate_steps_per_s", rate, "steps/s", "calibrated: set-rate %d" % rate)
            ctx.rec(key, rep, "dirty_before_distinct", round(distinct, 1), "MiB/s",
                    "distinct pages dirtied in a 1 s window (KVM dirty log)")
            ctx.rec(key, rep, "dirty_before_writes", round(writes, 1), "MiB/s", "page writes (steps) per s")
        port = free_port()
        sec = security_flags(ctx, mode)
        recv_argv = [ctx.bin["gmem-migrate"], "recv", "--vmm", dst_sock, "--from", "tcp:127.0.0.1:%d" % port,
                     "--timeout", "120", "--paused", "--json"] + sec
        send_argv = [ctx.bin["gmem-migrate"], "send", "--vmm", src_sock, "--to", "tcp:127.0.0.1:%d" % port,
                     "--json"] + sec
        if compress:
            send_argv += ["--compress", compress]
        if dirty_mibs is not None:
            send_argv += ["--downtime-ms", str(ctx.args.downtime_ms)]
        tv_send = tv_recv = None
        if timev:
            tv_recv = ctx.logpath("recv_time_v.txt")
            tv_send = ctx.logpath("send_time_v.txt")
            recv_argv = ["/usr/bin/time", "-v", "-o", tv_recv] + recv_argv
            send_argv = ["/usr/bin/time", "-v", "-o", tv_send] + send_argv
        label = "%s (%s)" % (case, slot)
        recv = ctx.spawn(name + "_recv", recv_argv, line_reader=True, label="recv " + label)
        wait_for(lambda: listening(port), 30, "recv to listen on port %d" % port, recv)
        if ctx.incoming_mem is False:
            warm_memory(ctx, parse_size(mem))
        steps0 = sum(v["step"] for v in ctl(src_sock, "query")["vcpus"]) if dirty_mibs is not None else 0
        lo0 = lo_tx_bytes()
        send = ctx.spawn(name + "_send", send_argv, line_reader=True, label="send " + label)
        t0 = send.t_spawn
        samplers = []
        if timev:
            samplers = [RssSampler(send, via_time=True), RssSampler(recv, via_time=True)]
            for s in samplers:
                s.start()
        rc_send = send.wait(900)
        rc_recv = recv.wait(120)
        lo1 = lo_tx_bytes()
        for s in samplers:
            s.stop_ev.set()
        if rc_send != 0 or rc_recv != 0:
            raise BenchError("send rc %s (%s), recv rc %s (%s)" % (rc_send, send.stderr_tail(3), rc_recv, recv.stderr_tail(3)))
        _, done = send.event("complete")
        t_rdone, rdone = recv.event("complete")
        if not done or not rdone:
            raise BenchError("no complete event (send %s, recv %s)" % (bool(done), bool(rdone)))
        t_end = max(send.t_exit, t_rdone)
        wall = t_end - t0
        # verify: the target's digest and checksum against the source's
        dd = ctl(dst_sock, "digest")
        if dirty_mibs is None:
            same = dd["digest"] == src_digest["digest"] and dd["checksum"] == src_digest["checksum"]
            vnote = "target digest/checksum == source's at pause (%s)" % dd["digest"]
        else:
            same, vnote = verify_by_replay(ctx, name, mem, slot, workload, img, dst_sock, dd)
        ctx.rec(key, rep, "verify_match", 1 if same else 0, "bool", vnote)
        if not same:
            raise BenchError("target memory differs from the source: " + vnote)
        ctx.rec(key, rep, "wall_s", round(wall, 3), "s", "send spawn -> send exit and recv complete")
        ctx.rec(key, rep, "send_exit_s", round(send.t_exit - t0, 3), "s", "send spawn -> send exit")
        ctx.rec(key, rep, "guest_MBps", round(ctx.guest_mb_for(mem) / wall, 1), "MB/s", "guest RAM / wall_s")
        ctx.rec(key, rep, "total_ms", done.get("total_ms"), "ms", "send's own total_ms")
        ctx.rec(key, rep, "downtime_ms", done.get("downtime_ms"), "ms")
        ctx.rec(key, rep, "estimated_downtime_ms", done.get("estimated_downtime_ms"), "ms")
        ctx.rec(key, rep, "passes", done.get("passes"), "count", done.get("stop_reason", ""))
        ctx.rec(key, rep, "wire_bytes", done.get("wire_bytes"), "B", "complete.wire_bytes")
        ctx.rec(key, rep, "loopback_bytes", lo1 - lo0, "B", "/proc/net/dev lo tx delta")
        if not timev:
            for who, pr in (("send", send), ("recv", recv)):
                ru = pr.rusage
                ctx.rec(key, rep, "cpu_" + who, round(ru.ru_utime + ru.ru_stime, 2), "cpu-s")
                ctx.rec(key, rep, "maxrss_%s_MiB" % who, round(ru.ru_maxrss / 1024.0, 1), "MiB", "wait4 ru_maxrss")
        else:
            for who, path, s in (("send", tv_send, samplers[0]), ("recv", tv_recv, samplers[1])):
                tv = parse_time_v(path)
                ctx.rec(key, rep, "maxrss_%s_MiB" % who, round(tv.get("maxrss_kib", 0) / 1024.0, 1), "MiB",
                        "/usr/bin/time -v 'Maximum resident set size'")
                ctx.rec(key, rep, "cpu_" + who, round(tv.get("user_s", 0) + tv.get("sys_s", 0), 2), "cpu-s")
                for k in ("RssAnon", "RssFile", "RssShmem"):
                    if k in s.peak:
                        ctx.rec(key, rep, "peak_%s_%s_MiB" % (who, k), round(s.peak[k] / 1024.0, 1), "MiB",
                                "largest /proc/PID/status %s seen (20 ms samples)" % k)
        if dirty_mibs is not None:
            t_sw, _ = send.event("switchover")
            steps1 = sum(v["step"] for v in ctl(dst_sock, "query")["vcpus"])
            run_s = (t_sw or send.t_exit) - t0
            ctx.rec(key, rep, "dirty_during_writes", round((steps1 - steps0) * PAGE / MIB / run_s, 1), "MiB/s",
                    "page writes per s from send start to switchover (under dirty logging)")
        log("  ours %s: %s" % (case, summary_line(ctx, key)))
    except BenchError as e:
        ctx.failures.append((key, rep, str(e)))
        ctx.rec(key, rep, "failed", 1, "bool")
        log("  ours %s FAILED: %s" % (case, e))
    finally:
        for p in (send, recv):
            if p is not None and p.alive():
                p.stop()
        if dst is not None:
            stop_vmm(dst, dst_sock)
        if src is not None:
            stop_vmm(src, src_sock)


def verify_by_replay(ctx, name, mem, slot, workload, img, dst_sock, dd):
    """A running guest's source is gone after the migration; the workload is deterministic (its
    checksum depends on seed, steps, options except rate, and the initial memory), so a fresh VM
    run for the same number of steps must print the checksum the target reports."""
    steps = sum(v["step"] for v in ctl(dst_sock, "query")["vcpus"])
    replay_workload = re.sub(r"rate=\d+", "rate=0", workload)
    argv = [ctx.bin["gmem-vmm"], "run", "--mem", mem, "--slot", slot, "--workload", replay_workload, "--seed", "1",
            "--init-from", img, "--steps", str(steps), "--json"]
    p = ctx.spawn(name + "_replay", argv, line_reader=True, label="replay check (running-guest verification)")
    if p.wait(900) != 0:
        return False, "replay VM failed: %s" % p.stderr_tail(3)
    _, ev = p.event("done")
    want = ev.get("checksum") if ev else None
    return want == dd["checksum"], "target checksum %s vs replay of %d steps %s" % (dd["checksum"], steps, want)


def ours_snapshot(ctx, case, rep, compress, img, mem="2G"):
    key = "ours:" + case
    name = "%s_r%d" % (case, rep)
    src = dst = None
    src_sock = dst_sock = None
    path = os.path.join(ctx.args.snap_dir or ctx.scr, "ours-%s.gmem" % case)
    try:
        src, src_sock = start_source(ctx, name, mem, "hva", "idle:rate=1000", img)
        ctl(src_sock, "pause")
        src_digest = ctl(src_sock, "digest")
        save_argv = [ctx.bin["gmem-snapshot"], "--json", "save", "--vmm", src_sock, "--out", path,
                     "--compress", compress, "--insecure-no-encryption"]
        if not os.path.exists(path):
            # untimed warm-up, as migbench's file cases: the timed save then replaces an existing file
            p = ctx.spawn(name + "_save_warmup", save_argv)
            if p.wait(600) != 0:
                raise BenchError("warm-up save failed: %s" % p.stderr_tail(3))
        save = ctx.spawn(name + "_save", save_argv, line_reader=True, label="snapshot save (%s)" % case)
        if save.wait(600) != 0:
            raise BenchError("save rc %s: %s" % (save.rc, save.stderr_tail(3)))
        t_save = save.t_exit - save.t_spawn
        size = os.path.getsize(path)
        t = time.monotonic()
        os.sync()
        t_sync = time.monotonic() - t
        # Two restores. First from the disk, as the save left the image (its direct writes bypass
        # the page cache; dropped again to be sure). Then with the image in the page cache: the
        # state QEMU's file cases restore from (migbench overwrites a resident file with `cat 1<>`
        # and `migrate-incoming exec:cat` reads it back from the cache), so that row is the
        # like-for-like comparison.
        rest = rest_cold = None
        for cache in ("cold", "warm"):
            if cache == "cold":
                drop_from_page_cache(path)
            else:
                read_through_page_cache(path)
            dst, dst_sock = start_target(ctx, "%s_%s" % (name, cache), mem)
            rest_argv = [ctx.bin["gmem-snapshot"], "--json", "restore", "--vmm", dst_sock, "--in", path, "--paused",
                         "--insecure-no-encryption"]
            r = ctx.spawn("%s_restore_%s" % (name, cache), rest_argv, line_reader=True,
                          label="snapshot restore (%s, image %s)" % (case, "on disk" if cache == "cold" else "in page cache"))
            if r.wait(600) != 0:
                raise BenchError("restore (%s) rc %s: %s" % (cache, r.rc, r.stderr_tail(3)))
            dd = ctl(dst_sock, "digest")
            same = dd["digest"] == src_digest["digest"] and dd["checksum"] == src_digest["checksum"]
            ctx.rec(key, rep, "verify_match" if cache == "warm" else "verify_match_cold", 1 if same else 0, "bool",
                    "restored digest/checksum == source's")
            if not same:
                raise BenchError("restored memory differs from the source (%s restore)" % cache)
            stop_vmm(dst, dst_sock)
            dst = None
            if cache == "cold":
                rest_cold = r
            else:
                rest = r
        t_rest = rest.t_exit - rest.t_spawn
        t_cold = rest_cold.t_exit - rest_cold.t_spawn
        gmb = ctx.guest_mb_for(mem)
        ctx.rec(key, rep, "save_s", round(t_save, 3), "s", "save spawn -> exit (includes its fsync)")
        ctx.rec(key, rep, "save_MBps", round(gmb / t_save, 1), "MB/s")
        ctx.rec(key, rep, "save_file_size", size, "B")
        ctx.rec(key, rep, "save_sync_after", round(t_sync, 3), "s", "os.sync() after save (not in save time)")
        ctx.rec(key, rep, "restore_s", round(t_rest, 3), "s",
                "restore spawn -> exit (into a --mem target), image in the page cache as QEMU's")
        ctx.rec(key, rep, "restore_MBps", round(gmb / t_rest, 1), "MB/s")
        ctx.rec(key, rep, "restore_cold_s", round(t_cold, 3), "s", "the same, image only on disk (as save left it)")
        ctx.rec(key, rep, "restore_cold_MBps", round(gmb / t_cold, 1), "MB/s")
        for who, pr in (("save", save), ("restore", rest)):
            ru = pr.rusage
            ctx.rec(key, rep, "cpu_" + who, round(ru.ru_utime + ru.ru_stime, 2), "cpu-s")
            ctx.rec(key, rep, "maxrss_%s_MiB" % who, round(ru.ru_maxrss / 1024.0, 1), "MiB")
        log("  ours %s: %s" % (case, summary_line(ctx, key)))
    except BenchError as e:
        ctx.failures.append((key, rep, str(e)))
        ctx.rec(key, rep, "failed", 1, "bool")
        log("  ours %s FAILED: %s" % (case, e))
    finally:
        if dst is not None:
            stop_vmm(dst, dst_sock)
        if src is not None:
            stop_vmm(src, src_sock)


def run_ours(ctx, case, rep):
    log("rep %d  ours %s" % (rep, case))
    img = ctx.img2
    if case == "plain":
        ours_live(ctx, case, rep, "hva", "plain", img)
    elif case == "plain_gmem":
        ours_live(ctx, case, rep, "gmem", "plain", img)
    elif case == "plain_cold":
        ours_live(ctx, case, rep, "hva", "plain", img, cold=True)
    elif case == "enc":
        ours_live(ctx, case, rep, "hva", "enc", img)
    elif case == "enc_gmem":
        ours_live(ctx, case, rep, "gmem", "enc", img)
    elif case == "zstd":
        ours_live(ctx, case, rep, "hva", "plain", img, compress="zstd:1")
    elif case == "plain_none":
        ours_live(ctx, case, rep, "hva", "plain", img, compress="none")
    elif case == "snap_raw":
        ours_snapshot(ctx, case, rep, "none", img)
    elif case == "snap_zstd":
        ours_snapshot(ctx, case, rep, "zstd:1", img)
    elif case in DIRTY_MIBS:
        ours_live(ctx, case, rep, "hva", "plain", img, dirty_mibs=DIRTY_MIBS[case])
    elif case == "rss4g":
        ours_live(ctx, case, rep, "hva", "plain", ctx.img4, mem="4G", timev=True)


# ---------------------------------------------------------------------------------------------
# reporting


def summary_line(ctx, key):
    d = ctx.data[key]

    def last(m, fmt):
        return (fmt % d[m][-1]) if d.get(m) else "-"
    parts = []
    for m, label, fmt in (("guest_MBps", "guest MB/s", "%.0f"), ("save_MBps", "save MB/s", "%.0f"),
                          ("restore_MBps", "restore MB/s", "%.0f"), ("downtime_ms", "downtime ms", "%.0f"),
                          ("downtime", "downtime ms", "%.0f"), ("passes", "passes", "%.0f"),
                          ("dirty_sync_count", "syncs", "%.0f"), ("loopback_bytes", "lo bytes", "%.0f"),
                          ("maxrss_send_MiB", "send maxrss MiB", "%.0f"), ("maxrss_recv_MiB", "recv maxrss MiB", "%.0f"),
                          ("dirty_before_distinct", "dirty MiB/s before (distinct)", "%.0f"),
                          ("guest_rate_before", "dirty MiB/s before", "%.0f"),
                          ("dirty_during_writes", "writes MiB/s during", "%.0f"),
                          ("guest_rate_during", "dirty MiB/s during", "%.0f")):
        if d.get(m):
            parts.append("%s %s" % (label, last(m, fmt)))
    return ", ".join(parts)


def vals(ctx, key, metric):
    d = ctx.data.get(key)
    if not d:
        return []
    return [v for v in d.get(metric, []) if v is not None]


def ratio(a, b):
    if not a or not b:
        return None
    return statistics.median(a) / statistics.median(b)


def mb(vs):
    return [v / 1e6 for v in vs]


class Table:
    HEAD = ["case", "measure", "ours median (min–max)", "QEMU reference", "QEMU median (min–max)", "ours/QEMU",
            "goal", "result", "wire MB ours / QEMU", "downtime ms ours / QEMU", "passes ours / QEMU"]

    def __init__(self):
        self.rows = []

    def add(self, *cols):
        self.rows.append([str(c) for c in cols])

    def markdown(self):
        out = ["| " + " | ".join(self.HEAD) + " |", "|" + "---|" * len(self.HEAD)]
        out += ["| " + " | ".join(r) + " |" for r in self.rows]
        return "\n".join(out)

    def text(self):
        w = [max(len(h), *(len(r[i]) for r in self.rows)) if self.rows else len(h) for i, h in enumerate(self.HEAD)]
        line = lambda cols: "  ".join(c.ljust(w[i]) for i, c in enumerate(cols))
        return "\n".join([line(self.HEAD), line(["-" * x for x in w])] + [line(r) for r in self.rows])


def verdict(value, goal_op, goal):
    if value is None:
        return "n/a"
    ok = value >= goal if goal_op == ">=" else value <= goal if goal_op == "<=" else value < goal
    return "PASS" if ok else "FAIL"


def build_table(ctx, cases):
    t = Table()
    wire = lambda key, m="loopback_bytes": cell(mb(vals(ctx, key, m)), "%.0f")
    ok_runs = lambda key, metric: len(vals(ctx, key, metric))

    def dt(o, q):
        return "%s / %s" % (cell(vals(ctx, o, "downtime_ms")), cell(vals(ctx, q, "downtime")))

    def ps(o, q):
        return "%s / %s" % (cell(vals(ctx, o, "passes")), cell(vals(ctx, q, "dirty_sync_count")))

    def live_row(case, label, qcase, goal=None, info=False):
        o, q = "ours:" + case, "qemu:" + qcase
        a, b = vals(ctx, o, "guest_MBps"), vals(ctx, q, "guest_MBps")
        r = ratio(a, b)
        g = "≥ %.1fx" % goal if goal else "—"
        res = verdict(r, ">=", goal) if goal else "info"
        if info and goal:
            g, res = "(≥ %.1fx)" % goal, "info: " + verdict(r, ">=", goal)
        t.add(case, label, cell(a), qcase, cell(b), "%.2fx" % r if r else "n/a", g, res,
              "%s / %s" % (wire(o), wire(q)), dt(o, q), ps(o, q))

    if "plain" in cases:
        live_row("plain", "guest MB/s, plaintext", "tcp_precopy")
        live_row("plain", "guest MB/s, plaintext", "tcp_multifd2", goal=1.3)
    if "plain_cold" in cases:
        live_row("plain_cold", "guest MB/s, plaintext into a cold target (memory faults in as pages arrive)",
                 "tcp_precopy_colddst")
    if "plain_gmem" in cases:
        live_row("plain_gmem", "guest MB/s, plaintext, gmem slots", "tcp_multifd2", goal=1.3, info=True)
    for case, info in (("enc", False), ("enc_gmem", True)):
        if case not in cases:
            continue
        slot = ", gmem slots" if info else ""
        live_row(case, "guest MB/s, encrypted%s" % slot, "tcp_multifd2", goal=1.0, info=info)
        best = None
        for qc in TLS_QEMU:
            v = vals(ctx, "qemu:" + qc, "guest_MBps")
            if v and (best is None or statistics.median(v) > statistics.median(vals(ctx, "qemu:" + best, "guest_MBps"))):
                best = qc
        live_row(case, "guest MB/s, encrypted%s vs QEMU TLS-PSK (better of precopy, multifd2)" % slot,
                 best or "tls_multifd2", goal=2.0, info=info)
    if "zstd" in cases:
        live_row("zstd", "guest MB/s, zstd level 1", "tcp_multifd2_zstd1", goal=1.5)
        o, q = "ours:zstd", "qemu:tcp_multifd2_zstd1"
        a, b = mb(vals(ctx, o, "loopback_bytes")), mb(vals(ctx, q, "loopback_bytes"))
        r = ratio(a, b)
        t.add("zstd", "wire MB (loopback tx bytes; stream bytes %s)" % cell(mb(vals(ctx, o, "wire_bytes"))),
              cell(a), "tcp_multifd2_zstd1", cell(b), "%.2fx" % r if r else "n/a", "≤ 1.00x", verdict(r, "<=", 1.0),
              "", "", "")
    if all(c in cases for c in ("plain", "plain_none", "zstd")):
        # --compress auto (plain's default) against the better of the two it chooses between.
        auto, none, zstd = (vals(ctx, "ours:" + c, "guest_MBps") for c in ("plain", "plain_none", "zstd"))
        best = max(none, zstd, key=lambda v: statistics.median(v) if v else 0)
        r = ratio(auto, best)
        t.add("plain", "guest MB/s, --compress auto vs the better of none %s and zstd:1 %s" % (cell(none), cell(zstd)),
              cell(auto), "", "", "%.2fx" % r if r else "n/a", "≥ 0.90x", verdict(r, ">=", 0.9), "", "", "")
    if "plain" in cases:
        o, q = "ours:plain", "qemu:tcp_precopy"
        a = vals(ctx, o, "downtime_ms")
        m = statistics.median(a) if a else None
        t.add("plain", "downtime ms, paused guest (max %s)" % (cell([max(a)]) if a else "-"), cell(a), "tcp_precopy",
              cell(vals(ctx, q, "downtime")), "", "≤ 20 ms", verdict(m, "<=", 20), "", "", "")
    for case, qcase in (("snap_raw", "file_cat"), ("snap_zstd", "file_zstd1")):
        if case not in cases:
            continue
        o, q = "ours:" + case, "qemu:" + qcase
        for what in ("save", "restore"):
            a, b = vals(ctx, o, what + "_MBps"), vals(ctx, q, what + "_MBps")
            r = ratio(a, b)
            extra = ""
            if what == "save":
                r2 = ratio(a, vals(ctx, q, "save_sync_MBps"))
                extra = " (QEMU incl. sync after: %s MB/s, ratio %s)" % (
                    cell(vals(ctx, q, "save_sync_MBps")), "%.2fx" % r2 if r2 else "n/a")
            filew = "%s / %s" % (cell(mb(vals(ctx, o, "save_file_size"))), cell(mb(vals(ctx, q, "save_file_size")))) \
                if what == "save" else ""
            if what == "restore":
                extra = " (both images in the page cache)"
            t.add(case, "guest MB/s, snapshot %s%s" % (what, extra), cell(a), qcase, cell(b),
                  "%.2fx" % r if r else "n/a", "≥ 1.5x", verdict(r, ">=", 1.5), filew,
                  "", "")
            if what == "restore":
                c = vals(ctx, o, "restore_cold_MBps")
                rc = ratio(c, b)
                t.add(case, "guest MB/s, snapshot restore, our image on disk only (as save leaves it) vs QEMU's "
                      "from the page cache", cell(c), qcase, cell(b), "%.2fx" % rc if rc else "n/a", "—", "info",
                      "", "", "")
    for case, mibs in DIRTY_MIBS.items():
        if case not in cases:
            continue
        o, q = "ours:" + case, "qemu:dirty%d_precopy" % mibs
        a, b = vals(ctx, o, "guest_MBps"), vals(ctx, q, "guest_MBps")
        r = ratio(a, b)
        rates = "dirty MiB/s ours %s distinct before, %s writes during; QEMU %s before, %s during" % (
            cell(vals(ctx, o, "dirty_before_distinct")), cell(vals(ctx, o, "dirty_during_writes")),
            cell(vals(ctx, q, "guest_rate_before")), cell(vals(ctx, q, "guest_rate_during")))
        t.add(case, "guest MB/s (2147.48 MB / total wall); " + rates, cell(a), q.split(":")[1], cell(b),
              "%.2fx" % r if r else "n/a", "—", "info", "%s / %s (QEMU: transferred)" % (wire(o), wire(q, "transferred")),
              dt(o, q), ps(o, q))
        if case == "dirty256":
            dm = vals(ctx, o, "downtime_ms")
            m = statistics.median(dm) if dm else None
            t.add(case, "downtime ms vs --downtime-ms %d (max %s)" % (ctx.args.downtime_ms, cell([max(dm)]) if dm else "-"),
                  cell(dm), "", "", "", "≤ %d ms" % ctx.args.downtime_ms, verdict(m, "<=", ctx.args.downtime_ms), "", "", "")
            est, meas = vals(ctx, o, "estimated_downtime_ms"), vals(ctx, o, "downtime_ms")
            errs = [abs(e - d) / d * 100 for e, d in zip(est, meas) if d]
            me = statistics.median(errs) if errs else None
            t.add(case, "estimate error %% abs(est−meas)/meas (est %s ms)" % cell(est), cell(errs), "", "", "",
                  "≤ 25 %", verdict(me, "<=", 25), "", "", "")
    if "rss4g" in cases:
        o = "ours:rss4g"
        for who in ("send", "recv"):
            a = vals(ctx, o, "maxrss_%s_MiB" % who)
            anon = vals(ctx, o, "peak_%s_RssAnon_MiB" % who)
            fil = vals(ctx, o, "peak_%s_RssFile_MiB" % who)
            t.add("rss4g", "peak RSS MiB of %s, 4 GiB guest (/usr/bin/time -v; sampled peaks: anon %s, file %s)" % (
                who, cell(anon), cell(fil)), cell(a), "", "", "", "< 256 MiB",
                verdict(statistics.median(a) if a else None, "<", 256), "", "", "")
    return t


def machine_line(ctx):
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    qv = subprocess.run(["qemu-system-x86_64", "--version"], capture_output=True, text=True).stdout.splitlines()
    mem = "?"
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                mem = "%.1f GiB" % (int(line.split()[1]) / 1048576)
    except OSError:
        pass
    return ("%d × %s, %s RAM, Linux %s, %s, %s UTC, gmemkit %s" % (
        os.cpu_count() or 0, cpu, mem, platform.release(), qv[0] if qv else "QEMU ?",
        datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"), repo_version()))


def repo_version():
    """`git describe --always --dirty` (without taking the index lock); GMEM_COMPARE_NO_GIT=1 reads
    .git directly instead of running git."""
    if not os.environ.get("GMEM_COMPARE_NO_GIT") and shutil.which("git"):
        r = subprocess.run(["git", "--no-optional-locks", "-C", REPO, "describe", "--always", "--dirty", "--tags"],
                           capture_output=True, text=True)
        if r.returncode == 0:
            return r.stdout.strip()
    try:
        head = open(os.path.join(REPO, ".git", "HEAD")).read().strip()
        if head.startswith("ref: "):
            ref = head[5:]
            p = os.path.join(REPO, ".git", ref)
            if os.path.exists(p):
                return "%s@%s" % (ref.rsplit("/", 1)[-1], open(p).read().strip()[:12])
            for line in open(os.path.join(REPO, ".git", "packed-refs")):
                if line.strip().endswith(" " + ref):
                    return "%s@%s" % (ref.rsplit("/", 1)[-1], line.split()[0][:12])
        return head[:12]
    except OSError:
        return "unknown"


def raw_section(ctx):
    out = []
    for key in sorted(ctx.data):
        d = ctx.data[key]
        out.append("\n#### %s\n" % key)
        out.append("| metric | unit | n | median | values (rep order) |")
        out.append("|---|---|---|---|---|")
        for metric, vs in d.items():
            vs2 = [v for v in vs if v is not None]
            if not vs2:
                continue
            med = statistics.median(vs2)
            f = (lambda x: "%d" % x if x == int(x) else "%.0f" % x if abs(x) >= 1000 else "%.4g" % x)
            out.append("| %s | %s | %d | %s | %s |" % (metric, ctx.units.get((key, metric), ""), len(vs2), f(med),
                                                     ", ".join(f(v) for v in vs2)))
        for n in ctx.notes.get(key, [])[:12]:
            out.append("\n- %s" % n)
    return "\n".join(out)


def write_report(ctx, path, table, cases, started, finished, load0, load1):
    a = ctx.args
    lines = ["# bench/compare: gmemkit vs QEMU 7.2, same machine, same memory, same run", ""]
    lines.append("**Machine:** " + ctx.machine)
    lines.append("")
    lines.append("Run %s → %s UTC (%.1f min); load average before %s, after %s. Reps %d, interleaved "
                 "(QEMU first in odd reps, ours first in even). Cases: %s. Guest memory: `%s` "
                 "(gen_image.py --size 2G --seed 1), \"guest MB/s\" = 2147.48 MB / wall time. Cells: median (min–max). "
                 "MB = 10^6 B." % (started.strftime("%Y-%m-%d %H:%M:%S"), finished.strftime("%H:%M:%S"),
                                  (finished - started).total_seconds() / 60, load0, load1, a.reps, ", ".join(cases),
                                  ctx.img2))
    lines.append("")
    tgt = ("`gmem-vmm run --incoming --mem` (pre-populated target memory, the counterpart of QEMU's "
           "pre-written destination)" if ctx.incoming_mem else
           "**no `--mem` on incoming VMMs** (refused by this build): guest-size memory written and freed "
           "before each run instead")
    lines.append("Targets: " + tgt + ". Our live cases run over 127.0.0.1 TCP with 2 channels (send's default), "
                 "the paused ones with the default --compress unless the case says otherwise.")
    lines.append("")
    lines.append(table.markdown())
    lines.append("")
    lines.append("Notes:")
    lines.append("")
    lines.append("- ours wall = `gmem-migrate send` spawn → send exit and recv's `complete` event (tool start-up, "
                 "connection and handshake included); QEMU wall = `migrate` command → destination MIGRATION completed. "
                 "Snapshot save = `gmem-snapshot save` spawn → exit (includes its fsync; QEMU's does not: the "
                 "\"incl. sync after\" figure adds QEMU's separately timed `os.sync()`); restore = spawn → exit into "
                 "a `--mem` target vs QEMU `migrate-incoming exec:` → completed.")
    lines.append("- wire MB: `/proc/net/dev` lo tx delta for both sides (headers included; anything else on lo "
                 "during the window counts too); ours' stream bytes are in the raw section (`wire_bytes`).")
    lines.append("- Running guest: QEMU's guest writes one counter into the next page of its 512 MiB working set, "
                 "round-robin, paced. Ours (`--workload dirty:rate=R,pages=%d,words=1`, 1 vCPU) writes one word "
                 "of a pseudo-random page of its 512 MiB working set per step; R = −WS·ln(1 − D/WS) steps/s makes "
                 "D MiB/s of *distinct* pages per 1 s window (R=0, as fast as it runs, when D ≥ WS/s). \"before\" is "
                 "measured with KVM's dirty log over 1 s; \"during\" counts steps (page writes) from send start to "
                 "switchover. Our send gets `--downtime-ms %d` (QEMU's downtime-limit default is 300 ms). "
                 "Every running-guest run is verified by replaying the workload for the target's step count in a fresh "
                 "VM and comparing checksums (the source VMM quits after the migration)." % (DIRTY_WS_PAGES, a.downtime_ms))
    lines.append("- Paused cases are verified by the target's `digest` and `checksum` against the source's at pause; "
                 "QEMU's by `cmp` of the destination backing file (migbench.py).")
    for w in ctx.warnings:
        lines.append("- WARNING: " + w)
    if ctx.failures:
        lines.append("")
        lines.append("Failed runs (not in the medians):")
        lines.append("")
        for key, rep, msg in ctx.failures:
            lines.append("- %s rep %d: %s" % (key, rep, msg.replace("\n", " ")))
    lines.append("")
    lines.append("## Raw numbers per case")
    lines.append(raw_section(ctx))
    lines.append("")
    lines.append("## Exact commands")
    lines.append("")
    lines.append("Harness: `bench/compare %s`" % " ".join(shlex.quote(x) for x in sys.argv[1:]))
    lines.append("")
    lines.append("```")
    for label, c in ctx.commands.items():
        lines.append("# %s\n%s" % (label, c))
    lines.append("```")
    lines.append("")
    lines.append("Control-socket requests (JSON lines, docs/control-protocol.md): `pause` on the paused-guest sources, "
                 "`digest` on source and target, `dirty-log`/`query` for the dirty rate, `quit`.")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


# ---------------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(prog="bench/compare", description="gmemkit vs QEMU 7.2, side by side (see bench/README.md)")
    ap.add_argument("--reps", type=int, default=None, help="repetitions per case (default 3; --quick: 1)")
    ap.add_argument("--cases", default=None, help="comma-separated subset of: " + ",".join(CASES))
    ap.add_argument("--quick", action="store_true", help="reps 1 and a smaller set (%s), for development" % ",".join(QUICK_CASES))
    ap.add_argument("--no-build", action="store_true", help="use the binaries already in --build-dir")
    ap.add_argument("--build-dir", default=os.path.join(REPO, "build"), help="build tree (default: <repo>/build, the default preset)")
    ap.add_argument("--out", default=None, help="report file (default bench/RESULTS.md, written only by a full run)")
    ap.add_argument("--downtime-ms", type=int, default=300, help="send --downtime-ms for the running-guest cases (default 300)")
    ap.add_argument("--no-rss", action="store_true", help="skip the 4 GiB RSS case (needs a 4 GiB image, ~50 s to generate)")
    ap.add_argument("--snap-dir", default=None, help="directory of our snapshot files (default: the scratch dir under /tmp, "
                    "like migbench's q.img)")
    ap.add_argument("--keep", action="store_true", help="keep the scratch directory (logs, TSVs)")
    ap.add_argument("--list", action="store_true", help="list the cases and exit")
    args = ap.parse_args()
    args.build_dir = os.path.abspath(args.build_dir)
    if args.list:
        for c, (q, desc) in CASES.items():
            print("%-11s %s  [QEMU: %s]" % (c, desc, ", ".join(q) or "-"))
        return 0
    if args.cases:
        cases = [c.strip() for c in args.cases.split(",") if c.strip()]
        bad = [c for c in cases if c not in CASES]
        if bad:
            ap.error("unknown case(s) %s; known: %s" % (", ".join(bad), ", ".join(CASES)))
    elif args.quick:
        cases = list(QUICK_CASES)
    else:
        cases = list(CASES)
    if args.no_rss and "rss4g" in cases:
        cases.remove("rss4g")
    reps = args.reps if args.reps is not None else (1 if args.quick else 3)
    args.reps = reps
    partial = args.quick or args.cases is not None
    out = args.out or (None if partial else os.path.join(REPO, "bench", "RESULTS.md"))
    if not os.path.exists("/dev/kvm"):
        raise SystemExit("bench/compare: /dev/kvm is missing; both sides need KVM")

    ctx = Ctx(args)

    def on_term(signum, frame):
        print("bench/compare: signal %d, stopping everything it started" % signum, file=sys.stderr, flush=True)
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGINT, signal.default_int_handler)   # even when started with SIGINT ignored
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)
    rc = 0
    try:
        shared = shared_bench()
        ensure_packages(args)
        build(args)
        ctx.bin = bins(args)
        key = os.path.join(ctx.scr, "key")
        subprocess.run([ctx.bin["gmem-migrate"], "-q", "keygen", "--out", key], check=True)
        ctx.key_file = key
        ctx.cmd("key", [ctx.bin["gmem-migrate"], "keygen", "--out", key])
        ctx.img2 = ensure_image(ctx, shared, 2, check_hash=True)
        ctx.guest_mb = os.path.getsize(ctx.img2) / 1e6
        ctx.guest_mb_for = lambda mem: parse_size(mem) / 1e6
        if "rss4g" in cases:
            ctx.img4 = ensure_image(ctx, shared, 4)
        ctx.machine = machine_line(ctx)
        log(ctx.machine)
        log("cases %s, %d rep(s); scratch %s" % (",".join(cases), reps, ctx.scr))
        started = datetime.datetime.now(datetime.timezone.utc)
        load0 = "%.2f %.2f %.2f" % os.getloadavg()
        for rep in range(1, reps + 1):
            qemu_done = set()
            for case in cases:
                if case == "rss4g" and rep != 1:
                    continue
                qcases = [q for q in CASES[case][0] if q not in qemu_done]
                order = ["qemu", "ours"] if rep % 2 == 1 else ["ours", "qemu"]
                for side in order:
                    if side == "qemu":
                        for q in qcases:
                            run_qemu(ctx, shared, q, rep, ctx.img2)
                            qemu_done.add(q)
                    else:
                        run_ours(ctx, case, rep)
        finished = datetime.datetime.now(datetime.timezone.utc)
        load1 = "%.2f %.2f %.2f" % os.getloadavg()
        table = build_table(ctx, cases)
        print()
        print("gmemkit vs QEMU 7.2 (" + ctx.machine + ")")
        print(table.text())
        if ctx.failures:
            print("\nFAILED RUNS:")
            for k, r, m in ctx.failures:
                print("  %s rep %d: %s" % (k, r, m))
            rc = 1
        for w in ctx.warnings:
            print("WARNING: " + w)
        if out:
            write_report(ctx, out, table, cases, started, finished, load0, load1)
            log("wrote %s" % out)
        else:
            log("partial run (--quick/--cases): no report written (pass --out FILE to write one)")
    except BenchError as e:
        print("bench/compare: %s" % e, file=sys.stderr)
        rc = 2
    except KeyboardInterrupt:
        print("bench/compare: interrupted", file=sys.stderr)
        rc = 130
    finally:
        ctx.procs.cleanup()
        if ctx.qemu_running:
            # migbench.py was stopped mid-case: its fixed-name scratch files in /dev/shm stay behind
            for f in ("/dev/shm/anchor_dst", "/dev/shm/anchor_src_run"):
                if os.path.exists(f):
                    os.unlink(f)
        for f in ("/dev/shm/gmem-compare-warm-%d" % os.getpid(),):
            if os.path.exists(f):
                os.unlink(f)
        if args.keep:
            log("scratch kept: %s" % ctx.scr)
        else:
            shutil.rmtree(ctx.scr, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
