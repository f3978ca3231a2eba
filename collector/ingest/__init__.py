"""From MQTT to the store: payload checks, the running service and its metrics."""
