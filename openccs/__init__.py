"""openccs: a self-hosted implementation of the Tencent Cloud Container Service API v2."""

__version__ = "0.1.0"
