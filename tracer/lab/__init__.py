"""The network-namespace lab: rebuilds flannel/Calico topologies on one Linux box (``tracer lab``)."""
