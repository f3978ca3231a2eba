"""One Prometheus endpoint, for the sensor's health metrics and the collector's ingest metrics."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client.registry import Collector, CollectorRegistry

log = logging.getLogger(__name__)


@dataclass
class MetricsServer:
    """A running metrics endpoint; `close()` stops it."""

    host: str
    port: int
    _stop: Callable[[], None]

    def close(self) -> None:
        self._stop()


def serve_metrics(collector: Collector, host: str, port: int) -> MetricsServer:
    """Serve `collector` alone at http://host:port/metrics in a daemon thread (port 0: any free port)."""
    # The HTTP side of prometheus_client is imported only when an endpoint is asked for.
    from prometheus_client import start_http_server

    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    server, thread = start_http_server(port, addr=host, registry=registry)
    bound = int(server.server_address[1])

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    log.info("metrics on http://%s:%d/metrics", host, bound)
    return MetricsServer(host, bound, stop)
