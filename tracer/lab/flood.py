"""A paced packet flood for the lab's capture benchmark and flood tests: ``python3 -m tracer.lab.flood IFACE PPS
SECONDS [SIZE]`` sends UDP frames out of IFACE through an AF_PACKET socket at PPS packets/s for SECONDS.

One ``send()`` per frame, paced in bursts against a monotonic schedule (the generator catches up after a stall
instead of slowing down for good), so the rate stays near the target as long as one core can keep up. Every frame
carries its sequence number in the IP ID and the payload, so a capture can count what it missed. Prints one JSON
line: ``{"sent": N, "seconds": S, "pps": R}``. Only for the lab's own namespaces (needs CAP_NET_RAW).
"""

from __future__ import annotations

import json
import socket
import struct
import sys
import time

BURST = 64


def _csum(data: bytes) -> int:
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def frame(seq: int, size: int = 64, src: str = "10.99.0.1", dst: str = "10.99.0.2") -> bytes:
    """An Ethernet/IPv4/UDP frame of ``size`` bytes (≥ 60) to port 9 (discard) with ``seq`` in IP ID + payload."""
    payload = struct.pack("!Q", seq).ljust(max(size - 42, 8), b"\0")
    udp = struct.pack("!HHHH", 40000, 9, 8 + len(payload), 0) + payload
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), seq & 0xFFFF, 0, 64, 17, 0,
                      socket.inet_aton(src), socket.inet_aton(dst))
    hdr = hdr[:10] + struct.pack("!H", _csum(hdr)) + hdr[12:]
    return b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01" + b"\x08\x00" + hdr + udp


def flood(iface: str, pps: int, seconds: float, size: int = 64) -> dict:
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as s:
        s.bind((iface, 0))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        base = frame(0, size)
        head, tail = base[:18], base[20:]
        send = s.send
        sent = 0
        start = time.monotonic()
        end = start + seconds
        interval = 1.0 / pps
        while True:
            now = time.monotonic()
            if now >= end:
                break
            due = int((now - start) * pps) + 1 - sent
            if due <= 0:
                time.sleep(min(interval * BURST, end - now))
                continue
            for _ in range(min(due, BURST * 4)):
                # IP ID = sequence (the IP checksum is left stale: the capture does not check it).
                send(head + struct.pack("!H", sent & 0xFFFF) + tail)
                sent += 1
        took = time.monotonic() - start
    return {"sent": sent, "seconds": round(took, 3), "pps": round(sent / took) if took else 0}


def main(argv: list[str]) -> int:
    iface, pps, seconds = argv[0], int(argv[1]), float(argv[2])
    size = int(argv[3]) if len(argv) > 3 else 64
    print(json.dumps(flood(iface, pps, seconds, size)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
