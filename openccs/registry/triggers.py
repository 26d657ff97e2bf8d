"""Service-update triggers: which pushed tags match, and firing one (recorded in the log)."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from openccs.log import get_logger, log_event
from openccs.store.models import Account
from openccs.timeutil import utcnow

from .models import CcrRepository, CcrTrigger, CcrTriggerLog

log = get_logger("openccs.registry.triggers")

METHODS = ("all", "taglist", "regex")


def taglist(expr: str) -> list[str]:
    return [t.strip() for t in expr.split(";") if t.strip()]


def matches(method: str, expr: str, tag: str) -> bool:
    if method == "all":
        return True
    if method == "taglist":
        return tag in taglist(expr)
    if method == "regex":
        try:
            return re.search(expr, tag) is not None
        except re.error:
            return False
    return False


def invoke_para(trigger: CcrTrigger, app_id: int) -> dict[str, object]:
    return {
        "appId": str(app_id),
        "clusterId": trigger.cluster_id,
        "namespace": trigger.namespace,
        "serviceName": trigger.service_name,
        "containerName": trigger.container_name,
        "clusterRegion": trigger.cluster_region,
    }


def fire_trigger(s: Session, trigger: CcrTrigger, image: str) -> tuple[int, str]:
    """Point the trigger's service container at `image` (what ModifyClusterServiceImage
    does: a new revision rolls out); returns (returnCode, returnMsg) for the log."""
    from openccs.domain import workloads
    from openccs.errors import ApiError

    try:
        svc = workloads.find_service(
            s, trigger.account_id, trigger.cluster_id, trigger.namespace, trigger.service_name
        )
    except ApiError as exc:
        return exc.code, exc.message
    names = {c["containerName"] for c in svc.spec.get("containers", [])}
    if trigger.container_name not in names:
        return 5000, (
            f"service {trigger.namespace}/{trigger.service_name} has no container"
            f" {trigger.container_name}"
        )
    workloads.set_images(svc, {trigger.container_name: image})
    return 0, "ok"


def fire_matching(s: Session, repo: CcrRepository, tag: str, registry_host: str) -> int:
    """Fire every trigger of the repository whose condition matches the pushed tag."""
    fired = 0
    triggers = s.scalars(
        select(CcrTrigger).where(CcrTrigger.repository_id == repo.id).order_by(CcrTrigger.id)
    ).all()
    if not triggers:
        return 0
    app_id = s.scalar(select(Account.app_id).where(Account.id == repo.account_id)) or 0
    image = f"{registry_host}/{repo.name}:{tag}"
    for trigger in triggers:
        if not matches(trigger.invoke_method, trigger.invoke_expr, tag):
            continue
        code, msg = fire_trigger(s, trigger, image)
        s.add(
            CcrTriggerLog(
                account_id=trigger.account_id,
                trigger_name=trigger.name,
                repo_name=repo.name,
                tag_name=tag,
                invoke_method=trigger.invoke_method,
                invoke_expr=trigger.invoke_expr,
                invoke_para=invoke_para(trigger, app_id),
                return_code=code,
                return_msg=msg,
                invoke_time=utcnow(),
            )
        )
        log_event(log, "trigger fired", trigger=trigger.name, image=image, code=code, message=msg)
        fired += 1
    return fired
