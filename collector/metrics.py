"""Prometheus metrics for the collector: what came in, what was stored, what was rejected and why.

A custom collector reads `IngestStats` (and the MQTT connection state) at scrape time, so the counts
are the Ingestor's own and nothing is counted twice. The endpoint is the same small prometheus_client
server the sensor uses, on 127.0.0.1 by default.

Wiring (one line in the CLI's `run` around `collector.run()`, or in `Collector.start`/`stop`):

    server = metrics.serve(lambda: collector.stats, port=9892)     # ... and server.close() at the end

`connected` (optional) is a callable saying whether the MQTT client is connected, e.g. a
`Collector.connected` property returning `self._client.connected`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from prometheus_client import start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

from collector.ingest import IngestStats, Reason

log = logging.getLogger(__name__)

DEFAULT_PORT = 9892
PREFIX = "footfall_collector"

# (metric, help, IngestStats attribute): declared once.
_COUNTERS = (
    ("received", "Payloads received from the broker", "received"),
    ("accepted", "Payloads that passed every check", "accepted"),
    ("stored", "Events written to the store", "stored"),
    ("duplicates", "Accepted events already stored (a re-send), not stored again", "duplicates"),
    ("store_errors", "Failed store writes (retried)", "store_errors"),
    ("dropped", "Accepted events lost because the store kept failing", "dropped"),
)


class CollectorMetrics(Collector):
    def __init__(self, stats: Callable[[], IngestStats], connected: Callable[[], bool] | None = None) -> None:
        self._stats = stats
        self._connected = connected

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        stats = self._stats()
        for name, text, attr in _COUNTERS:
            yield CounterMetricFamily(f"{PREFIX}_{name}", text, value=float(getattr(stats, attr)))
        rejected = CounterMetricFamily(
            f"{PREFIX}_rejected", "Payloads rejected, by reason", labels=["reason"]
        )
        for reason in Reason:  # every reason, zeros included, so rate() works from the first rejection
            rejected.add_metric([reason.value], float(stats.rejected.get(reason.value, 0)))
        yield rejected
        yield GaugeMetricFamily(
            f"{PREFIX}_pending", "Accepted events not stored yet", value=float(stats.pending)
        )
        if self._connected is not None:
            up = GaugeMetricFamily(f"{PREFIX}_mqtt_connected", "1 while connected to the broker")
            up.add_metric([], 1.0 if self._connected() else 0.0)
            yield up


@dataclass
class MetricsServer:
    """A running metrics endpoint; `close()` stops it."""

    host: str
    port: int
    _stop: Callable[[], None]

    def close(self) -> None:
        self._stop()


def registry_for(
    stats: Callable[[], IngestStats], connected: Callable[[], bool] | None = None
) -> CollectorRegistry:
    """A registry holding only the collector's metrics."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(CollectorMetrics(stats, connected))
    return registry


def serve(
    stats: Callable[[], IngestStats],
    connected: Callable[[], bool] | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
) -> MetricsServer:
    """Serve the collector's metrics at http://host:port/metrics in a daemon thread (port 0: any free port)."""
    server, thread = start_http_server(port, addr=host, registry=registry_for(stats, connected))

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    bound = int(server.server_address[1])
    log.info("metrics on http://%s:%d/metrics", host, bound)
    return MetricsServer(host, bound, stop)
