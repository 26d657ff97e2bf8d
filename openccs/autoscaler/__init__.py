"""Autoscaling groups of a cluster's machines and the cluster autoscaler that sizes them."""
