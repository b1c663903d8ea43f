"""Capture files and live sources turned into a columnar packet index (no Textual, no scapy here)."""
