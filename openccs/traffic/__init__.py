"""Traffic from outside a cluster: load balancers (public and inner VIPs), node ports and
HTTP(S) ingress (an nginx per cluster)."""
