"""footfall sensor: what runs on the Raspberry Pi."""
