"""``/api/v1/staff``: who am I, and my presence (routing follows it at once)."""

from __future__ import annotations

from fastapi import APIRouter

from api.auth.dependencies import CurrentStaff
from api.dependencies import ServicesDep
from api.handoff import flows as handoff_flows
from api.staff.models import Staff
from api.staff.schemas import PresenceRead, PresenceUpdate, StaffRead

router = APIRouter(prefix="/api/v1/staff", tags=["staff"])


@router.get("/me", response_model=StaffRead)
async def me(staff: CurrentStaff, services: ServicesDep) -> StaffRead:
    return await services.db.run(
        lambda session: StaffRead.model_validate(session.get(Staff, staff.id))
    )


@router.put("/me/presence", response_model=PresenceRead)
async def set_presence(body: PresenceUpdate, staff: CurrentStaff,
                       services: ServicesDep) -> PresenceRead:
    manager = services.handoff
    outcome = await services.db.run(handoff_flows.set_presence, staff_id=staff.id,
                                    presence=body.presence, desk=manager.desk())
    await manager.apply(outcome)
    return PresenceRead(handle=staff.handle, presence=body.presence,
                        conversations_moved=outcome.changed)
