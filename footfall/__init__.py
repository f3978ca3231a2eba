"""Parts both sides of footfall share: the wire schema, MQTT client, config loading."""
