"""Each cluster's Kubernetes API: an HTTPS endpoint speaking the Kubernetes API (JSON) over
openccs's own state, for kubectl."""
