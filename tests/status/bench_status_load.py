#!/usr/bin/env python3
"""Benchmark (not a test): training images/s with and without status traffic.

  bench_status_load.py --catlip build/catlip --source . [--phase-seconds 6] [--rounds 4]

Starts a small training under `mpirun -n 3` (2 workers), then alternates phases without and
with load on the same run, so that start-up and the machine's other work affect both sides
alike:
  paced   100 requests/s: GET /metrics (new connection each) and protobuf StatusRequests in turn
  hammer  one client sending GET /metrics back to back on a keep-alive connection, as fast as
          the server answers
Images/s of a phase come from metrics.jsonl (steps x global batch over the logged time).
Prints each phase and the slowdown of each load against the no-load phases around it.
All traffic goes to 127.0.0.1.
"""
import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from status_test import ENV, load_pb2  # noqa: E402

MODEL = ["model.name=vit_tiny", "model.image_size=64", "model.patch_size=8", "model.dim=96",
         "model.depth=4", "model.heads=3", "model.num_classes=200", "data.train=synthetic",
         "train.global_batch=32", "train.threads=1", "log.every_steps=5", "seed=3",
         "train.steps=100000000", "checkpoint.every_steps=1000000"]


def cpu_seconds(pid):
    """utime + stime of a process (all threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def last_logged(run_dir):
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        lines = f.read().splitlines()
    r = json.loads(lines[-1])
    return r["step"], r["time"]


class Load(threading.Thread):
    def __init__(self, kind, info, pb2):
        super().__init__(daemon=True)
        self.kind, self.info, self.pb2 = kind, info, pb2
        self.stop_flag = threading.Event()
        self.requests = 0
        self.errors = 0

    def http_once(self, sock=None):
        own = sock is None
        if own:
            sock = socket.create_connection(("127.0.0.1", self.info["http_port"]), timeout=10)
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n" + (b"Connection: close\r\n" if own else b"") + b"\r\n")
        data = b""
        while b"\r\n\r\n" not in data:
            data += sock.recv(65536)
        head, body = data.split(b"\r\n\r\n", 1)
        length = int([l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")][0].split(b":")[1])
        while len(body) < length:
            body += sock.recv(65536)
        if own:
            sock.close()
        if not head.startswith(b"HTTP/1.1 200"):
            self.errors += 1

    def pb_once(self):
        from google.protobuf.internal.encoder import _VarintBytes
        req = self.pb2.ClientMessage()
        req.status.include_workers = True
        body = req.SerializeToString()
        with socket.create_connection(("127.0.0.1", self.info["port"]), timeout=10) as s:
            s.sendall(_VarintBytes(len(body)) + body)
            s.shutdown(socket.SHUT_WR)
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        if len(data) < 20:
            self.errors += 1

    def run(self):
        if self.kind == "hammer":
            sock = socket.create_connection(("127.0.0.1", self.info["http_port"]), timeout=10)
            while not self.stop_flag.is_set():
                self.http_once(sock)
                self.requests += 1
            sock.close()
            return
        period, next_t = 0.01, time.time()
        while not self.stop_flag.is_set():
            (self.http_once if self.requests % 2 == 0 else self.pb_once)()
            self.requests += 1
            next_t += period
            delay = next_t - time.time()
            if delay > 0:
                time.sleep(delay)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--catlip", required=True)
    ap.add_argument("--source", required=True)
    ap.add_argument("--phase-seconds", type=float, default=6.0)
    ap.add_argument("--rounds", type=int, default=4)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="catlip-status-bench-")
    pb2 = load_pb2(a.source, tmp)
    run_dir = os.path.join(tmp, "run")
    args = ["mpirun", "--oversubscribe", "-n", "3", os.path.abspath(a.catlip), "train", "--set", f"run_dir={run_dir}"]
    for s in MODEL:
        args += ["--set", s]
    log = open(os.path.join(tmp, "train.log"), "w")
    proc = subprocess.Popen(args, env=ENV, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    G = 32
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                info = json.load(open(os.path.join(run_dir, "status.json")))
                if last_logged(run_dir)[0] >= 50:
                    break
            except (OSError, ValueError, IndexError):
                pass
            time.sleep(0.2)
        else:
            sys.exit("training did not start")
        time.sleep(2)  # warm-up
        results = {"none": [], "paced": [], "hammer": []}
        cpu = {"none": [], "paced": [], "hammer": []}
        order = []
        for _ in range(a.rounds):
            order += ["none", "paced", "none", "hammer"]
        order.append("none")
        for kind in order:
            load = None
            if kind != "none":
                load = Load(kind, info, pb2)
                load.start()
                time.sleep(0.3)
            s0, t0 = last_logged(run_dir)
            c0, w0 = cpu_seconds(info["pid"]), time.time()
            r0 = load.requests if load else 0
            time.sleep(a.phase_seconds)
            s1, t1 = last_logged(run_dir)
            c1, w1 = cpu_seconds(info["pid"]), time.time()
            r1 = load.requests if load else 0
            ips = (s1 - s0) * G / (t1 - t0)
            cpu[kind].append((c1 - c0, w1 - w0, r1 - r0))
            extra = ""
            if load:
                load.stop_flag.set()
                load.join(10)
                extra = f"  {load.requests / (a.phase_seconds + 0.3):.0f} requests/s, {load.errors} errors"
            results[kind].append(ips)
            print(f"{kind:7s} {ips:8.1f} img/s  (steps {s0}..{s1})  coordinator CPU "
                  f"{100 * (c1 - c0) / (w1 - w0):.1f}% of a core{extra}", flush=True)
        base = statistics.mean(results["none"])
        print(f"\nno load  {base:.1f} img/s (mean of {len(results['none'])} phases, "
              f"stdev {statistics.stdev(results['none']):.1f})")
        for kind in ("paced", "hammer"):
            m = statistics.mean(results[kind])
            print(f"{kind:7s}  {m:.1f} img/s, slowdown {100 * (base - m) / base:+.2f}% "
                  f"(phases: {', '.join(f'{x:.0f}' for x in results[kind])})")
        idle = sum(c for c, _, _ in cpu["none"]) / sum(w for _, w, _ in cpu["none"])
        print(f"coordinator CPU without load: {100 * idle:.2f}% of a core")
        for kind in ("paced", "hammer"):
            c = sum(x for x, _, _ in cpu[kind])
            w = sum(x for _, x, _ in cpu[kind])
            n = sum(x for _, _, x in cpu[kind])
            extra_cpu = c - idle * w
            print(f"coordinator CPU under {kind} load: {100 * c / w:.2f}% of a core; {n} requests, "
                  f"{1e6 * extra_cpu / max(n, 1):.0f} us of coordinator CPU per request")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 15)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
        with open(os.path.join(tmp, "train.log")) as f:
            cpu = [l.strip() for l in f if "coordinator:" in l]
        print("\n".join(cpu))
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
