"""The v2 wire protocol: signature, replay guard, envelope, errors, parameters and actions."""
