"""Getting events out of the sensor: the durable spool, MQTT and JSON-lines sinks, Home Assistant discovery."""
