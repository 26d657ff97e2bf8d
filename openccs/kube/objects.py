"""The names `writes.py` and `streams.py` import from here, which were defined in this module
before it was split: kinds and ids are in `kinds.py`, the snapshot of a cluster's rows in
`snapshot.py`, the renderers in `render.py`, the Tables in `tables.py`. New code imports
from those."""

from openccs.kube.kinds import CHANGE_CAUSE, HASH_LABEL, KINDS, Kind, ts
from openccs.kube.render import SYSTEM_LABEL_PREFIXES, _template_for, revision_uid
from openccs.kube.snapshot import Snapshot

__all__ = [
    "CHANGE_CAUSE",
    "HASH_LABEL",
    "KINDS",
    "SYSTEM_LABEL_PREFIXES",
    "Kind",
    "Snapshot",
    "_template_for",
    "revision_uid",
    "ts",
]
