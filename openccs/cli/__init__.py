"""The `openccs` command."""
