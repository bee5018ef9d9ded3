"""Every table, imported in one place (for Alembic and for metadata-wide operations)."""

from api.auth.models import LoginAttempt
from api.cluster.models import Lease, ReplicaBeat
from api.conversations.models import ChannelIdentity, Conversation, Fan, Message
from api.csat.models import CsatResponse
from api.db import Base
from api.inbox.models import CannedResponse, MessageFlag, Note, StaffSession
from api.lost_property.models import LostPropertyReport
from api.outbox.models import OutboxItem
from api.registry.models import BotModel, ModelEvent, RasaProcess
from api.review.models import ReviewCursor, ReviewItem, ReviewMessage, TrainingDataChange
from api.staff.models import Staff
from api.training.models import TrainingJob

__all__ = [
    "Base",
    "CannedResponse",
    "Lease",
    "LoginAttempt",
    "ReplicaBeat",
    "MessageFlag",
    "Note",
    "StaffSession",
    "ChannelIdentity",
    "CsatResponse",
    "Conversation",
    "CsatResponse",
    "Fan",
    "LostPropertyReport",
    "Message",
    "OutboxItem",
    "Staff",
    "BotModel",
    "ModelEvent",
    "RasaProcess",
    "ReviewCursor",
    "ReviewItem",
    "ReviewMessage",
    "TrainingDataChange",
    "TrainingJob",
]
