"""The lab's tiny workloads and clients, run inside pod namespaces: ``python3 -m tracer.lab.agent ACTION ...``.

Servers (stand-ins for the tutorial's images, standard library only):
  ``http PORT NAME``        an HTTP server answering every GET with ``NAME`` (nginx, tomcat)
  ``udp-echo PORT``         echoes UDP datagrams back
  ``dns PORT JSON``         answers A queries for the names in JSON ({name: ip}), NXDOMAIN otherwise (CoreDNS)
Clients (exit 0 on an answer, 1 on none, so the caller can tell a denied flow from an allowed one):
  ``ping IP [COUNT]``       ICMP echo through a raw socket (these machines have no ping binary)
  ``get URL``               one HTTP GET
  ``udp IP PORT TEXT``      one datagram, wait for the echo
  ``resolve NAME SERVER``   one DNS A query over UDP
"""

from __future__ import annotations

import http.server
import json
import os
import socket
import struct
import sys
import time
import urllib.request

TIMEOUT = 2.0


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def ping(ip: str, count: int = 1) -> bool:
    """Send ``count`` echo requests (1 per 100 ms); True when at least one reply came back."""
    ident = os.getpid() & 0xFFFF
    got = False
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) as s:
        s.settimeout(TIMEOUT)
        for seq in range(1, count + 1):
            payload = struct.pack("!d", time.time()) + bytes(range(48))
            hdr = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
            pkt = struct.pack("!BBHHH", 8, 0, _checksum(hdr + payload), ident, seq) + payload
            s.sendto(pkt, (ip, 0))
            deadline = time.monotonic() + TIMEOUT
            while time.monotonic() < deadline:
                try:
                    data, _ = s.recvfrom(2048)
                except TimeoutError:
                    break
                ihl = (data[0] & 0x0F) * 4
                typ, _, _, rid, rseq = struct.unpack_from("!BBHHH", data, ihl)
                if typ == 0 and rid == ident and rseq == seq:
                    got = True
                    break
            if seq < count:
                time.sleep(0.1)
    return got


def get(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as r:   # noqa: S310 - lab URLs only
            r.read()
        return True
    except OSError:
        return False


def udp(ip: str, port: int, text: str) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(TIMEOUT)
        s.sendto(text.encode(), (ip, port))
        try:
            s.recvfrom(2048)
            return True
        except TimeoutError:
            return False


def _qname(name: str) -> bytes:
    return b"".join(bytes([len(p)]) + p.encode() for p in name.rstrip(".").split(".")) + b"\0"


def resolve(name: str, server: str) -> bool:
    qid = os.getpid() & 0xFFFF
    query = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + _qname(name) + struct.pack("!HH", 1, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(TIMEOUT)
        s.sendto(query, (server, 53))
        try:
            data, _ = s.recvfrom(2048)
        except TimeoutError:
            return False
    return len(data) >= 12 and struct.unpack_from("!H", data)[0] == qid


def serve_http(port: int, name: str) -> None:
    body = f"{name}\n".encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        server_version = name

        def do_GET(self) -> None:  # noqa: N802 - the stdlib's hook name
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:   # quiet: the lab has no one to read it
            pass

    http.server.ThreadingHTTPServer(("0.0.0.0", port), Handler).serve_forever()


def serve_udp_echo(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("0.0.0.0", port))
        while True:
            data, peer = s.recvfrom(65535)
            s.sendto(data, peer)


def _parse_qname(data: bytes, off: int) -> tuple[str, int]:
    labels = []
    for _ in range(128):   # bounded: a name has at most 127 labels
        n = data[off]
        off += 1
        if n == 0:
            break
        labels.append(data[off:off + n].decode("ascii", "replace"))
        off += n
    return ".".join(labels), off


def serve_dns(port: int, records: dict[str, str]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("0.0.0.0", port))
        while True:
            data, peer = s.recvfrom(4096)
            try:
                qid, _flags, qd = struct.unpack_from("!HHH", data)
                name, end = _parse_qname(data, 12)
                qtype = struct.unpack_from("!H", data, end)[0]
            except (struct.error, IndexError):
                continue
            question = data[12:end + 4]
            ip = records.get(name.lower())
            if ip and qtype == 1:
                answer = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 30, 4) + socket.inet_aton(ip)
                s.sendto(struct.pack("!HHHHHH", qid, 0x8580, 1, 1, 0, 0) + question + answer, peer)
            else:   # NXDOMAIN, as CoreDNS answers the search-domain misses
                s.sendto(struct.pack("!HHHHHH", qid, 0x8583, 1, 0, 0, 0) + question, peer)


def main(argv: list[str]) -> int:
    action, *rest = argv
    if action == "http":
        serve_http(int(rest[0]), rest[1])
    elif action == "udp-echo":
        serve_udp_echo(int(rest[0]))
    elif action == "dns":
        serve_dns(int(rest[0]), json.loads(rest[1]))
    elif action == "ping":
        return 0 if ping(rest[0], int(rest[1]) if len(rest) > 1 else 1) else 1
    elif action == "get":
        return 0 if get(rest[0]) else 1
    elif action == "udp":
        return 0 if udp(rest[0], int(rest[1]), rest[2]) else 1
    elif action == "resolve":
        return 0 if resolve(rest[0], rest[1]) else 1
    else:
        print(f"unknown action {action}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
