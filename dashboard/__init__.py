"""The live dashboard: a pure model of the swarm (state), the bus feed, and the aiohttp server."""

from dashboard.feed import FeedConfig
from dashboard.server import Dashboard
from dashboard.state import DashboardState, Delta, Limits, QueueStats

__all__ = ["Dashboard", "DashboardState", "Delta", "FeedConfig", "Limits", "QueueStats"]
