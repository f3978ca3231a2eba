"""The `footfall-collector` console script: answers `--help` without importing any command (footfall.cli).

The commands live in collector.cli.main's group; this table is their listing, checked against it by
tests/test_startup.py.
"""

from __future__ import annotations

from footfall.cli import LazyGroup, tool_group

COMMANDS = {
    "api": "Serve the HTTP API (/v1, OpenAPI description at /openapi.json) and the dashboard (/) until SIGTERM/SIGINT.",
    "calibration": "Calibration reports of the sensors (`footfall-sensor calibrate counts --report FILE`).",
    "consent": "Consented devices: their visits carry a stable token the collector joins to the profile.",
    "events": "Online events (web, app, e-mail) of the profiles.",
    "ingest": "Store the events of a JSON-lines FILE (one MQTT payload a line; '-' for stdin) like the live path.",
    "journeys": "The merged timeline of a consented profile's online events and store visits.",
    "kpis": "Omnichannel KPIs of a store: web-to-store, store-to-web, lag, recognised visitors, per day.",
    "optout": "Opted-out devices: the sensors drop their frames before anything else is done with them.",
    "pki": "TLS identities: a CA, the broker's certificate, one client certificate per sensor and collector.",
    "profiles": "Online profiles (id, attributes, segments) from the marketing tool.",
    "report": "Footfall of one store per hour, with totals, capture rate, dwell time and repeat visitors.",
    "retention": "Delete and anonymise stored data per the config's `retention:` section.",
    "run": "Subscribe to the broker and store events until SIGTERM/SIGINT (or --until-idle).",
    "schema": "Print the event schemas (JSON Schema, or Markdown tables for the README).",
    "tokens": "The deployment's token key, which turns MACs into the tokens of opt-outs and consents.",
    "users": "Dashboard accounts: who may log in, with which role, to see which stores.",
}


@tool_group("footfall-collector", cls=LazyGroup, target="collector.cli.main:main", commands=COMMANDS)
def main() -> None:
    """footfall collector: stores the sensors' events and reports footfall per store."""
