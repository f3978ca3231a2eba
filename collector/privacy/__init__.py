"""Opt-outs, consents and retention on the collector."""
