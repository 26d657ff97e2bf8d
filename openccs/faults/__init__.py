"""Faults on purpose: break a machine, its network or a pod for a while, then restore exactly
what was changed, also after a restart of openccs (the records are durable)."""
