"""The image registry (CCR): Docker Distribution as the data plane, openccs as its token
server, notification receiver and manager (tags, retention, triggers, garbage collection)."""
