"""footfall collector: what runs on the server."""
