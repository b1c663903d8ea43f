"""What a node tells about its CNI: links, roles, VXLAN FDB, routes to pod subnets (pyroute2; no Textual)."""
