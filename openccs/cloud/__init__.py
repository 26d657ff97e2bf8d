"""The local cloud: host-level engines for VPCs (bridges), machines (netns + dockerd), pod
routes, images and the sweep of leftovers. See the module docstrings for the interface."""
