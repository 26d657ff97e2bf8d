"""The web console: server-rendered pages over the same action handlers the v2 API runs."""
