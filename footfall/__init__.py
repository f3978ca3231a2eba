"""Parts both sides of footfall share: the wire schema, the MQTT client, config loading, secret files."""
