"""Omnichannel: online profiles and events, journeys, KPIs and real-time triggers."""
