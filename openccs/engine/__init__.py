"""Kubernetes semantics on the local cloud: deployment and replica set controllers, the
scheduler, node agents (kubelets) running pods on machines' dockerds, and the loop that
drives them."""
