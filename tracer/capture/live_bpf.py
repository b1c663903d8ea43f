"""Compile a tcpdump filter expression to classic BPF with the system libpcap (through ctypes).

``compile_bpf(expr, linktype)`` returns the instructions as ``(code, jt, jf, k)`` tuples, which
``tracer.capture.live_ring`` attaches to its AF_PACKET socket (SO_ATTACH_FILTER) so the kernel filters before a
packet is copied to us. libpcap's own compiler means the expression language is exactly tcpdump's.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading

from tracer.errors import FilterError

LINKTYPE_ETHERNET = 1
# pcap_open_dead takes a DLT, which differs from the file's LINKTYPE for raw IP (LINKTYPE_RAW 101 is DLT_RAW 12).
_DLT_OF_LINKTYPE = {101: 12}
PCAP_NETMASK_UNKNOWN = 0xFFFFFFFF
_lock = threading.Lock()     # pcap_compile is not thread-safe in older libpcap


class _BpfInsn(ctypes.Structure):
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint32)]


class _BpfProgram(ctypes.Structure):
    _fields_ = [("bf_len", ctypes.c_uint), ("bf_insns", ctypes.POINTER(_BpfInsn))]


_lib = None


def _libpcap():
    global _lib
    if _lib is None:
        name = ctypes.util.find_library("pcap") or "libpcap.so.0.8"
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            raise FilterError("capture filters need libpcap (Debian: apt-get install libpcap0.8)") from None
        lib.pcap_open_dead.restype = ctypes.c_void_p
        lib.pcap_open_dead.argtypes = [ctypes.c_int, ctypes.c_int]
        lib.pcap_compile.argtypes = [ctypes.c_void_p, ctypes.POINTER(_BpfProgram), ctypes.c_char_p, ctypes.c_int,
                                     ctypes.c_uint32]
        lib.pcap_geterr.restype = ctypes.c_char_p
        lib.pcap_geterr.argtypes = [ctypes.c_void_p]
        lib.pcap_freecode.argtypes = [ctypes.POINTER(_BpfProgram)]
        lib.pcap_close.argtypes = [ctypes.c_void_p]
        _lib = lib
    return _lib


def compile_bpf(expr: str, linktype: int = LINKTYPE_ETHERNET, snaplen: int = 262144) -> list[tuple[int, int, int, int]]:
    """The classic BPF program for ``expr`` on a link of ``linktype``; FilterError when it does not compile."""
    lib = _libpcap()
    with _lock:
        handle = lib.pcap_open_dead(_DLT_OF_LINKTYPE.get(linktype, linktype), snaplen)
        if not handle:
            raise FilterError("libpcap could not open a compile handle")
        prog = _BpfProgram()
        try:
            if lib.pcap_compile(handle, ctypes.byref(prog), expr.encode(), 1, PCAP_NETMASK_UNKNOWN) != 0:
                msg = (lib.pcap_geterr(handle) or b"syntax error").decode(errors="replace")
                raise FilterError(f"capture filter {expr!r}: {msg}")
            insns = [(prog.bf_insns[i].code, prog.bf_insns[i].jt, prog.bf_insns[i].jf, prog.bf_insns[i].k)
                     for i in range(prog.bf_len)]
            lib.pcap_freecode(ctypes.byref(prog))
            return insns
        finally:
            lib.pcap_close(handle)
