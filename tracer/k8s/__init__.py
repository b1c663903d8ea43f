"""Kubernetes cluster model and the NetworkPolicy verdict engine (pure: no Textual, no scapy)."""
