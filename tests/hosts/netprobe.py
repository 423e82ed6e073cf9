#!/usr/bin/env python3
"""TCP throughput between two bed hosts (no iperf on the machine).

  netprobe.py serve PORT            accept one connection, read until EOF, print
                                    "received BYTES bytes in SECONDS s: MBIT Mbit/s"
  netprobe.py send HOST PORT MIB    connect, send MIB MiB, wait for the reply
"""
import socket
import sys
import time


def serve(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen(1)
    print("listening", flush=True)
    c, _ = s.accept()
    total, t0, first = 0, time.monotonic(), None
    while True:
        b = c.recv(1 << 20)
        if not b:
            break
        if first is None:  # time from the first byte: excludes connection setup
            first = time.monotonic()
        total += len(b)
    dt = time.monotonic() - (first or t0)
    msg = f"received {total} bytes in {dt:.3f} s: {total * 8 / dt / 1e6:.1f} Mbit/s"
    c.sendall(msg.encode())
    c.close()
    print(msg, flush=True)


def send(host, port, mib):
    deadline = time.monotonic() + 10
    while True:
        try:
            c = socket.create_connection((host, port), timeout=30)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    buf = b"\0" * (1 << 20)
    for _ in range(mib):
        c.sendall(buf)
    c.shutdown(socket.SHUT_WR)
    print(c.recv(4096).decode(), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(int(sys.argv[2]))
    else:
        send(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
