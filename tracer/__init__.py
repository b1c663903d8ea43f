"""tracer: a terminal packet-trace explorer for Kubernetes networking incidents.

The core (``capture``, ``decode``, ``k8s``, ``hops``) never imports Textual; ``k8s`` and ``hops`` never
import scapy. ``ui`` renders what the core computes and every pane has a non-interactive twin command.
"""

__version__ = "0.1.0"
