"""The Pi side: the monitor interface, its packet socket and channel plan, the capture loop and its health."""
