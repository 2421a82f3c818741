"""The aar bus: subjects, stream specs, the Bus connection and the embedded nats-server."""

from bus.admin import ensure_swarm, list_swarms, swarm_state
from bus.config import DEFAULT_URL, BusConfig
from bus.connection import Bus, RemoteError
from bus.consume import Consumer, Delivery, StartAt, WorkQueue, peek_stored, replay
from bus.core_sub import CoreSubscription
from bus.errors import BusError, HandlerError, InvalidSubjectError, PublishError, ServerError
from bus.natsd import NatsServer, ServerConfig
from bus.subjects import Kind

__all__ = [
    "DEFAULT_URL",
    "Bus",
    "BusConfig",
    "BusError",
    "Consumer",
    "CoreSubscription",
    "Delivery",
    "HandlerError",
    "InvalidSubjectError",
    "Kind",
    "NatsServer",
    "PublishError",
    "RemoteError",
    "ServerConfig",
    "ServerError",
    "StartAt",
    "WorkQueue",
    "ensure_swarm",
    "list_swarms",
    "peek_stored",
    "replay",
    "swarm_state",
]
