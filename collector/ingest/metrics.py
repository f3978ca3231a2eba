"""Prometheus metrics for the collector: what came in, what was stored, what was rejected and why.

A custom collector reads `IngestStats` (and the MQTT connection state) at scrape time, so the counts
are the Ingestor's own and nothing is counted twice. The endpoint is footfall/metrics.py's, the one
the sensor serves too, on 127.0.0.1 by default.

Wiring (one line in the CLI's `run` around `collector.run()`, or in `Collector.start`/`stop`):

    server = metrics.serve(lambda: collector.stats, port=9892)     # ... and server.close() at the end

`connected` (optional) is a callable saying whether the MQTT client is connected, e.g. a
`Collector.connected` property returning `self._client.connected`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from collector.ingest.ingestor import IngestStats, Reason
from footfall.metrics import MetricsServer, serve_metrics

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


def serve(
    stats: Callable[[], IngestStats],
    connected: Callable[[], bool] | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
) -> MetricsServer:
    """Serve the collector's metrics at http://host:port/metrics in a daemon thread (port 0: any free port)."""
    return serve_metrics(CollectorMetrics(stats, connected), host, port)
