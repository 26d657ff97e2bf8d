"""The registry backend's rules on a real database without a registry daemon: who may
name, see and change what, the quotas, and that a change the registry cannot make leaves
the index as it was. The end-to-end tests (test_registry_actions.py, test_registry_push.py)
prove the same rules through the v2 actions with a running registry and real clients."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from openccs.backends import Work
from openccs.backends import registry as backend
from openccs.domain import accounts
from openccs.errors import ApiError
from openccs.registry import domain
from openccs.registry.models import CcrFavor, CcrRepository, CcrTag, CcrTrigger
from openccs.server import Services
from openccs.timeutil import utcnow

DIGEST = "sha256:" + "a" * 64
TARGET = backend.TriggerTarget(
    cluster_id="cls-abcd1234",
    namespace="default",
    service_name="web",
    container_name="web",
    cluster_region=1,
)


def _code(err: pytest.ExceptionInfo[ApiError]) -> tuple[int, str]:
    return err.value.code, err.value.code_desc


def _work(s: Session, services: Services) -> Work:
    """A new account's unit of work."""
    acct = accounts.create_account(s)
    s.flush()
    return Work(s, acct.id, services)


def _tag(w: Work, repository: str, tag: str, digest: str = DIGEST) -> None:
    """A tag as the registry's push notification records it."""
    repo = domain.repository_by_name(w.db, repository)
    assert repo is not None
    domain.record_tag(w.db, repo, tag, domain.TagDetails(digest=digest, size_bytes=3), utcnow())


def test_namespaces_are_unique_across_accounts_reserved_and_counted(services: Services) -> None:
    with services.store.session() as s:
        w, other = _work(s, services), _work(s, services)
        backend.create_namespace(w, "team")
        with pytest.raises(ApiError) as err:
            backend.create_namespace(other, "team")
        assert _code(err) == (5100, "ResourceAlreadyExists")
        with pytest.raises(ApiError) as err:
            backend.create_namespace(w, "library")
        assert _code(err) == (5100, "NamespaceReserved")
        with pytest.raises(ApiError) as err:
            backend.create_namespace(w, "Team")
        assert err.value.code == 4000 and "namespace" in err.value.message
        assert backend.namespace_taken(other, "team") == backend.NameTaken(True, False)
        assert backend.namespace_taken(w, "library") == backend.NameTaken(False, True)
        # Repositories go in an own namespace only, and a namespace that holds some stays.
        with pytest.raises(ApiError) as err:
            backend.create_repository(other, "team/app", False, "")
        assert err.value.code == 5000
        backend.create_repository(w, "team/app", False, "")
        backend.create_repository(w, "team/db", True, "")
        page = backend.namespaces(w, None, 0, 20, None)
        assert [(n.name, n.repo_count) for n in page.rows] == [("team", 2)]
        assert backend.namespaces(other, None, 0, 20, None).total == 0
        with pytest.raises(ApiError) as err:
            backend.delete_namespace(w, "team")
        assert _code(err) == (5100, "NamespaceNotEmpty")
        # A sub-account sees only what its allow-list names.
        assert backend.namespaces(w, None, 0, 20, lambda name: name != "team").rows == []


def test_the_namespace_quota_is_the_accounts(services: Services) -> None:
    with services.store.session() as s:
        w = _work(s, services)
        accounts.set_quota(s, w.account_id, domain.QUOTA_NAMESPACES, 1)
        backend.create_namespace(w, "one")
        with pytest.raises(ApiError) as err:
            backend.create_namespace(w, "two")
        assert _code(err) == (4400, "QuotaExceeded")
        assert "ccrNamespaces (1)" in err.value.message
        limits = {q.kind: q.value for q in backend.limits(w)}
        assert limits["namespace"] == 1 and set(limits) == {"namespace", "repo", "tag", "triggers"}


def test_another_accounts_private_repository_does_not_exist(services: Services) -> None:
    with services.store.session() as s:
        w, other = _work(s, services), _work(s, services)
        backend.create_namespace(w, "team")
        backend.create_repository(w, "team/secret", False, "")
        backend.create_repository(w, "team/open", True, "shared")
        assert backend.repository_exists(w, "team/secret")
        assert not backend.repository_exists(other, "team/secret")
        with pytest.raises(ApiError) as err:
            backend.tags(other, "team/secret", None, 0, 20)
        assert err.value.code == 5000
        # A public one is visible to all, and changeable by its owner only.
        info = backend.repository(other, "team/open")
        assert (info.public, info.description, info.tag_count) == (True, "shared", 0)
        with pytest.raises(ApiError) as err:
            backend.update_repository(other, "team/open", description="mine")
        assert err.value.code == 5000
        catalogue = backend.public_repositories(other, None, None, True, 0, 20)
        assert [r.name for r in catalogue.rows] == ["team/open"]
        assert backend.own_repositories(other, None, None, None, 0, 20, None).total == 0


def test_repository_infos_count_tags_and_favourites(services: Services) -> None:
    with services.store.session() as s:
        w, other = _work(s, services), _work(s, services)
        backend.create_namespace(w, "team")
        backend.create_repository(w, "team/app", True, "")
        _tag(w, "team/app", "v1")
        _tag(w, "team/app", "v2")
        backend.add_favor(other, backend.REPOTYPE, "team/app")
        backend.add_favor(other, backend.REPOTYPE, "team/app")  # twice is once
        backend.add_favor(other, backend.HUB_REPOTYPE, "library/nginx")
        mine = backend.repository(w, "team/app")
        theirs = backend.repository(other, "team/app")
        assert (mine.tag_count, mine.favor_count, mine.user_favor) == (2, 1, False)
        assert theirs.user_favor
        favs = backend.favors(other, 0, 20, None)
        assert [(f.name, f.repotype, f.tag_count) for f in favs.rows] == [
            ("team/app", "QCLOUD HUB", 2),
            ("library/nginx", "DOCKER HUB", 0),
        ]
        with pytest.raises(ApiError) as err:
            backend.add_favor(other, backend.HUB_REPOTYPE, "Not A Name")
        assert err.value.code == 4000 and "reponame" in err.value.message


def test_deleting_favourites_is_all_or_nothing(services: Services) -> None:
    with services.store.session() as s:
        w = _work(s, services)
        backend.add_favor(w, backend.HUB_REPOTYPE, "library/nginx")
        with pytest.raises(ApiError) as err:
            backend.delete_favors(
                w,
                [
                    backend.Favor(backend.HUB_REPOTYPE, "library/nginx", " (favors.0)"),
                    backend.Favor(backend.HUB_REPOTYPE, "library/redis", " (favors.1)"),
                ],
            )
        assert err.value.code == 5000 and "favors.1" in err.value.message
        assert s.scalar(select(func.count()).select_from(CcrFavor)) == 1
        backend.delete_favors(w, [backend.Favor(backend.HUB_REPOTYPE, "library/nginx")])
        assert backend.favors(w, 0, 20, None).total == 0


def test_registry_changes_need_the_registry_and_leave_the_index_as_it_was(
    services: Services,
) -> None:
    """Without a running registry, deleting tags or repositories and copying an image are
    5100 RegistryUnavailable before anything is touched; bad or unknown names come first."""
    with services.store.session() as s:
        w = _work(s, services)
        backend.create_namespace(w, "team")
        backend.create_repository(w, "team/app", False, "")
        _tag(w, "team/app", "v1")
        with pytest.raises(ApiError) as err:
            backend.delete_tags(w, "team/app", ["v1", "bad tag"])
        assert err.value.code == 4000 and "tags.1" in err.value.message
        with pytest.raises(ApiError) as err:
            backend.delete_tags(w, "team/app", ["v1", "v9"])
        assert err.value.code == 5000 and "team/app:v9" in err.value.message
        with pytest.raises(ApiError) as err:
            backend.delete_tags(w, "team/app", ["v1"])
        assert _code(err) == (5100, "RegistryUnavailable")
        with pytest.raises(ApiError) as err:
            backend.delete_repositories(w, ["team/app", "team/none"])
        assert err.value.code == 5000 and "team/none" in err.value.message
        with pytest.raises(ApiError) as err:
            backend.delete_repositories(w, ["team/app"])
        assert _code(err) == (5100, "RegistryUnavailable")
        with pytest.raises(ApiError) as err:
            backend.duplicate_image(w, "team/app:v1", "team/copy:v1")
        assert _code(err) == (5100, "RegistryUnavailable")
        assert s.scalar(select(func.count()).select_from(CcrTag)) == 1
        assert [r.name for r in s.scalars(select(CcrRepository))] == ["team/app"]


def test_duplicate_image_checks_source_destination_and_quotas_first(services: Services) -> None:
    with services.store.session() as s:
        w, other = _work(s, services), _work(s, services)
        backend.create_namespace(w, "team")
        backend.create_namespace(other, "them")
        backend.create_repository(w, "team/app", False, "")
        _tag(w, "team/app", "v1")
        with pytest.raises(ApiError) as err:
            backend.duplicate_image(w, "team/app", "team/app:v2")
        assert err.value.code == 4000 and "src_image" in err.value.message
        with pytest.raises(ApiError) as err:
            backend.duplicate_image(w, "team/app:v9", "team/app:v2")
        assert err.value.code == 5000 and "team/app:v9" in err.value.message
        # Into another account's namespace: it does not exist for this one.
        with pytest.raises(ApiError) as err:
            backend.duplicate_image(w, "team/app:v1", "them/app:v1")
        assert err.value.code == 5000 and "them" in err.value.message
        # Another account cannot read the private source.
        with pytest.raises(ApiError) as err:
            backend.duplicate_image(other, "team/app:v1", "them/app:v1")
        assert err.value.code == 5000 and "team/app" in err.value.message
        # A full repository takes no new tag, unless a retention strategy makes room.
        accounts.set_quota(s, w.account_id, domain.QUOTA_TAGS, 1)
        with pytest.raises(ApiError) as err:
            backend.duplicate_image(w, "team/app:v1", "team/app:v2")
        assert _code(err) == (4400, "QuotaExceeded")
        backend.set_retention(w, "team/app", "keep_last_nums", 1)
        with pytest.raises(ApiError) as err:
            backend.duplicate_image(w, "team/app:v1", "team/app:v2")
        assert _code(err) == (5100, "RegistryUnavailable")  # past the rules: the registry
        accounts.set_quota(s, w.account_id, domain.QUOTA_REPOSITORIES, 1)
        with pytest.raises(ApiError) as err:
            backend.duplicate_image(w, "team/app:v1", "team/new:v1")
        assert _code(err) == (4400, "QuotaExceeded")


def test_retention_is_set_read_and_closed_on_own_repositories(services: Services) -> None:
    with services.store.session() as s:
        w, other = _work(s, services), _work(s, services)
        backend.create_namespace(w, "team")
        backend.create_repository(w, "team/app", True, "")
        assert backend.retention(w, "team/app") is None
        backend.set_retention(w, "team/app", "keep_last_days", 7)
        row = backend.retention(w, "team/app")
        assert row is not None and (row.type, row.value, row.valid) == ("keep_last_days", 7, True)
        with pytest.raises(ApiError) as err:
            backend.set_retention(other, "team/app", "keep_last_days", 1)
        assert err.value.code == 5000
        backend.close_retention(w, "team/app")
        with pytest.raises(ApiError) as err:
            backend.close_retention(w, "team/app")
        assert err.value.code == 5000


def test_trigger_conditions_regions_and_changes(services: Services) -> None:
    with services.store.session() as s:
        w = _work(s, services)
        backend.create_namespace(w, "team")
        backend.create_repository(w, "team/app", False, "")
        with pytest.raises(ApiError) as err:
            backend.add_trigger(w, "t1", "team/app", "taglist", "v1;bad tag", TARGET)
        assert err.value.code == 4000 and "invokeExpr" in err.value.message
        with pytest.raises(ApiError) as err:
            backend.add_trigger(w, "t1", "team/app", "regex", " ", TARGET)
        assert err.value.code == 4000 and "required when invokeMethod is regex" in err.value.message
        far = backend.TriggerTarget(**{**TARGET.__dict__, "cluster_region": 99})
        with pytest.raises(ApiError) as err:
            backend.add_trigger(w, "t1", "team/app", "all", "", far)
        assert err.value.code == 4000 and "unknown region 99" in err.value.message
        # `all` keeps no expression.
        row = backend.add_trigger(w, "t1", "team/app", "all", "ignored", TARGET)
        assert (row.invoke_method, row.invoke_expr) == ("all", "")
        with pytest.raises(ApiError) as err:
            backend.add_trigger(w, "t1", "team/app", "all", "", TARGET)
        assert _code(err) == (5100, "ResourceAlreadyExists")
        nothing = backend.TriggerTarget()
        backend.modify_trigger(w, "t1", None, None, "regex", "^v", nothing)
        backend.modify_trigger(w, "t1", "t2", None, None, None, nothing)
        row = backend.list_triggers(w, None, None, 0, 20, None).rows[0][0]
        assert (row.name, row.invoke_method, row.invoke_expr) == ("t2", "regex", "^v")
        assert row.cluster_id == "cls-abcd1234"  # an unnamed target field stays
        # A new method without an expression drops the old one (then it is required).
        with pytest.raises(ApiError) as err:
            backend.modify_trigger(w, "t2", None, None, "taglist", None, nothing)
        assert "required when invokeMethod is taglist" in err.value.message


def test_deleting_a_trigger_needs_its_repository_and_cluster(services: Services) -> None:
    with services.store.session() as s:
        w = _work(s, services)
        backend.create_namespace(w, "team")
        backend.create_repository(w, "team/app", False, "")
        backend.add_trigger(w, "t1", "team/app", "all", "", TARGET)
        with pytest.raises(ApiError) as err:
            backend.delete_trigger(w, "t1", lambda resource: resource == "team/app")
        assert err.value.code == 4102 and "cls-abcd1234" in err.value.message
        assert s.scalar(select(func.count()).select_from(CcrTrigger)) == 1
        backend.delete_trigger(w, "t1", lambda resource: True)
        assert s.scalar(select(func.count()).select_from(CcrTrigger)) == 0
        with pytest.raises(ApiError) as err:
            backend.delete_trigger(w, "t1", lambda resource: True)
        assert err.value.code == 5000


def test_a_login_is_registered_once(services: Services) -> None:
    with services.store.session() as s:
        w = _work(s, services)
        login = backend.Login("100001")
        with pytest.raises(ApiError) as err:
            backend.change_password(w, login, "password1")
        assert err.value.code == 5000
        backend.register_login(w, login, "password1")
        with pytest.raises(ApiError) as err:
            backend.register_login(w, login, "password2")
        assert _code(err) == (5100, "AccountAlreadyRegistered")
        backend.change_password(w, login, "password2")
