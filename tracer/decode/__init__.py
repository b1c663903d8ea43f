"""Packet decoding: vectorised header fields for the index, and scapy dissection of one packet on demand.

This is the only package that imports scapy (and only its layer modules, never ``scapy.all``).
"""
