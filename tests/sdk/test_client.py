"""The SDK's resources against the real service: happy paths, pagination, options, errors."""

from __future__ import annotations

import platform
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import rushes
from rushes import types

from tests.helpers import PASSWORD
from tests.sdk.conftest import LiveServer


def test_me_api_keys_and_tenant(client: rushes.Client) -> None:
    me = client.me.get()
    assert isinstance(me, types.Me)
    assert me.email.endswith("@example.com") and me.role == "owner" and not me.is_platform_admin
    assert client.tenant.get().id == me.tenant.id
    assert client.tenant.update(name="Renamed").name == "Renamed"
    assert [m.email for m in client.tenant.members.list()] == [me.email]
    invited = client.tenant.members.invite(email="sdk-invitee@example.com", role="owner")
    assert (invited.status, invited.role) == ("pending", "owner")
    assert invited.link == f"/invitations/{invited.token}"

    created = client.api_keys.create(name="ci")
    assert created.key.startswith("rsh_") and created.name == "ci"
    assert created.id in {k.id for k in client.api_keys.list()}
    second = client.with_options(api_key=created.key)
    assert second.me.get().user_id == me.user_id
    client.api_keys.revoke(created.id)
    with pytest.raises(rushes.AuthenticationError):
        second.me.get()


def test_datasets_versions_and_pagination(client: rushes.Client, noise_png) -> None:
    asset = client.assets.upload(noise_png, rights="owned", progress=False)
    made = [client.datasets.create(name=f"set {i}", description="d") for i in range(5)]
    pager = client.datasets.list(limit=2)
    assert isinstance(pager, rushes.SyncPager)
    assert {d.id for d in pager} == {d.id for d in made}
    assert [len(p.items) for p in pager.pages()] == [2, 2, 1]
    first = pager.first_page()
    assert (first.total, first.limit, first.offset) == (5, 2, 0)
    # Read while new datasets are made (a newest-first list grows at the front): each seen once.
    seen = []
    for listed in client.datasets.list(limit=2):
        seen.append(listed.id)
        client.datasets.create(name=f"made while reading {len(seen)}")
    assert seen == [d.id for d in reversed(made)]

    dataset = client.datasets.update(made[0].id, name="Brand look")
    assert client.datasets.get(dataset.id).name == "Brand look"
    version = client.datasets.versions.create(
        dataset.id, items=[{"asset_id": asset.id, "caption": "a plate"}], trigger_word="brandlook"
    )
    assert (version.number, version.trigger_word, version.items[0].caption) == (1, "brandlook", "a plate")
    assert [v.number for v in client.datasets.versions.list(dataset.id)] == [1]
    replaced = client.datasets.versions.replace(dataset.id, 1, items=[asset.id])
    assert replaced.items == [types.DatasetItem(asset_id=asset.id, caption=None)]
    assert client.datasets.versions.get(dataset.id, 1).id == version.id

    # The asset is in a version, so deleting it conflicts; once the version goes, it may go.
    with pytest.raises(rushes.ConflictError) as conflict:
        client.assets.delete(asset.id)
    assert conflict.value.status_code == 409 and conflict.value.request_id
    client.datasets.versions.delete(dataset.id, 1)
    client.assets.delete(asset.id)
    client.datasets.delete(dataset.id)
    with pytest.raises(rushes.NotFoundError):
        client.datasets.get(dataset.id)

    # A loop that deletes what it reads goes on to the end: the next page is always fetched
    # before this one is handed out, so its cursor is never an item already deleted.
    left = client.datasets.list().first_page().total
    deleted = 0
    for listed in client.datasets.list(limit=2):
        client.datasets.delete(listed.id)
        deleted += 1
    assert (left, deleted, client.datasets.list().first_page().total) == (9, 9, 0)


async def test_async_client(live_server: LiveServer, api_key: str) -> None:
    async with rushes.AsyncClient(api_key=api_key, base_url=live_server.url) as client:
        me = await client.me.get()
        assert me.email.endswith("@example.com")
        for i in range(3):
            await client.datasets.create(name=f"async {i}")
        pager = client.datasets.list(limit=2)
        assert isinstance(pager, rushes.AsyncPager)
        assert sorted([d.name async for d in pager]) == ["async 0", "async 1", "async 2"]
        assert (await pager.first_page()).total == 3
        with pytest.raises(rushes.NotFoundError) as missing:
            await client.datasets.get(str(uuid.uuid4()))
        assert missing.value.request_id


def _invitee(live_server: LiveServer) -> rushes.Session:
    email = f"invitee-{uuid.uuid4().hex[:8]}@example.com"
    return rushes.sign_up(email=email, password=PASSWORD, tenant_name="Invitee", base_url=live_server.url)


def test_an_invitation_is_answered_with_its_link(live_server: LiveServer, client: rushes.Client) -> None:
    invitee = _invitee(live_server)
    invited = client.tenant.members.invite(email=invitee.me.email, role="owner")
    with rushes.Client(session=invitee.cookies, base_url=live_server.url) as by_invitee:
        # The id is not the link's token: only the link answers.
        with pytest.raises(rushes.NotFoundError):
            by_invitee.invitations.accept(token=invited.id)
        joined = by_invitee.invitations.accept(token=live_server.url + invited.link)
        assert isinstance(joined, types.Membership)
        assert (joined.tenant.id, joined.role) == (client.me.get().tenant.id, "owner")
        with pytest.raises(rushes.NotFoundError):
            by_invitee.invitations.decline(token=invited.token)


async def test_an_invitation_is_declined_with_the_async_client(live_server: LiveServer, api_key: str) -> None:
    invitee = _invitee(live_server)
    async with (
        rushes.AsyncClient(api_key=api_key, base_url=live_server.url) as owner,
        rushes.AsyncClient(session=invitee.cookies, base_url=live_server.url) as by_invitee,
    ):
        invited = await owner.tenant.members.invite(email=invitee.me.email)
        assert await by_invitee.invitations.decline(token=invited.token) is None
        with pytest.raises(rushes.NotFoundError):
            await by_invitee.invitations.accept(token=invited.token)
        assert [m.email async for m in owner.tenant.members.list()] == [(await owner.me.get()).email]


def test_configuration_from_environment(live_server: LiveServer, api_key: str, monkeypatch) -> None:
    monkeypatch.setenv("RUSHES_API_KEY", api_key)
    monkeypatch.setenv("RUSHES_BASE_URL", live_server.url + "/")
    with rushes.Client() as client:
        assert client.base_url == live_server.url
        assert client.me.get().email
        copy = client.with_options(
            max_retries=0, timeout=3.0, default_headers={"X-Request-ID": "sdk-test-123456"}
        )
        assert (copy.max_retries, copy.timeout.read, client.max_retries) == (0, 3.0, 2)
        with pytest.raises(rushes.NotFoundError) as missing:
            copy.datasets.get(str(uuid.uuid4()))
        assert missing.value.request_id == "sdk-test-123456"
    monkeypatch.delenv("RUSHES_API_KEY")
    with pytest.raises(rushes.RushesError, match="No API key"):
        rushes.Client()


def test_errors_from_the_live_server(live_server: LiveServer, client: rushes.Client) -> None:
    with pytest.raises(rushes.AuthenticationError) as unauthenticated:
        client.with_options(api_key="rsh_not_a_real_key").me.get()
    assert unauthenticated.value.status_code == 401
    with pytest.raises(rushes.PermissionDeniedError) as forbidden:
        client.admin.users.list().first_page()
    assert forbidden.value.body["detail"] == "Only platform admins may do this."
    with pytest.raises(rushes.BadRequestError):
        client.datasets.list(limit=0).first_page()
    with pytest.raises(rushes.UnprocessableEntityError) as invalid:
        client.uploads.create(
            filename="a.mp4", size=10, sha256="0" * 64, content_type="video/mp4", rights="owned", part_size=1
        )
    error = invalid.value
    assert isinstance(error, rushes.APIStatusError) and isinstance(error, rushes.RushesError)
    assert error.type and error.type.endswith("/invalid")
    assert error.request_id == error.body["request_id"] == error.response.headers["x-request-id"]
    assert "part_size" in str(error) and error.request_id in str(error)


def test_admin(live_server: LiveServer, api_key: str) -> None:
    with rushes.Client(api_key=live_server.admin_api_key(), base_url=live_server.url) as admin:
        tenants = list(admin.admin.tenants.list(limit=1))
        assert len(tenants) >= 2 and all(isinstance(t, types.TenantSummary) for t in tenants)
        assert any(u.is_platform_admin for u in admin.admin.users.list())
        tenant_id = rushes.Client(api_key=api_key, base_url=live_server.url).me.get().tenant.id
        assert admin.admin.tenants.update(tenant_id, status="suspended").status == "suspended"
        assert admin.admin.tenants.get(tenant_id).status == "suspended"
    with pytest.raises(rushes.PermissionDeniedError, match="suspended"):
        rushes.Client(api_key=api_key, base_url=live_server.url).me.get()


@pytest.mark.parametrize(
    ("status", "problem_type", "expected"),
    [
        (400, "about:blank", rushes.BadRequestError),
        (401, "about:blank", rushes.AuthenticationError),
        (402, "about:blank", rushes.QuotaExceededError),
        (403, "about:blank", rushes.PermissionDeniedError),
        (404, "about:blank", rushes.NotFoundError),
        (409, "about:blank", rushes.ConflictError),
        (410, "about:blank", rushes.APIStatusError),
        (413, "about:blank", rushes.PayloadTooLargeError),
        (422, "about:blank", rushes.UnprocessableEntityError),
        (429, "about:blank", rushes.RateLimitError),
        (429, "https://docs.rushes.dev/problems/quota-exceeded", rushes.QuotaExceededError),
        (500, "about:blank", rushes.InternalServerError),
        (503, "about:blank", rushes.InternalServerError),
    ],
)
def test_each_status_maps_to_its_error(status: int, problem_type: str, expected: type[Exception]) -> None:
    # Statuses the service cannot be made to answer on demand: a canned problem document.
    def answer(request: httpx.Request) -> httpx.Response:
        body = {
            "status": status,
            "title": "T",
            "detail": "what went wrong",
            "type": problem_type,
            "request_id": "r1",
        }
        return httpx.Response(
            status, json=body, headers={"content-type": "application/problem+json", "retry-after": "7"}
        )

    client = rushes.Client(api_key="rsh_x", transport=httpx.MockTransport(answer), max_retries=0)
    with pytest.raises(rushes.APIStatusError) as raised:
        client.me.get()
    error = raised.value
    # A refused key is the one answer the SDK words itself: the server cannot know which key was meant.
    message = (
        "The API key was not accepted by 127.0.0.1:8000: it is not a Rushes API key (rsh_..._...). Check the"
        " key given (RUSHES_API_KEY), or make a new one with `rushes keys create`."
        if status == 401
        else "what went wrong"
    )
    assert (error.status_code, error.request_id, error.message) == (status, "r1", message)
    assert type(error) is expected
    if isinstance(error, rushes.RateLimitError):
        assert error.retry_after == 7.0


@pytest.mark.parametrize("status", [402, 413, 429])
def test_quota_figures_come_from_the_problem_document(status: int) -> None:
    # Canned: a 429 replayed without its Retry-After header still says when to retry in its body.
    problem = {
        "status": status,
        "type": "https://docs.rushes.dev/problems/quota-exceeded" if status == 402 else "about:blank",
        "detail": "over",
        "quota": "gpu_seconds_per_month",
        "limit": 100,
        "used": 100.5,
        "resets_at": "2025-02-01T00:00:00+00:00",
        "retry_after": 12,
    }
    bodies = [problem, {"status": status, "detail": "over", "resets_at": "soon"}]
    client = rushes.Client(
        api_key="rsh_x",
        transport=httpx.MockTransport(lambda request: httpx.Response(status, json=bodies.pop(0))),
        max_retries=0,
    )
    with pytest.raises(
        (rushes.QuotaExceededError, rushes.PayloadTooLargeError, rushes.RateLimitError)
    ) as full:
        client.me.get()
    assert (full.value.quota, full.value.limit, full.value.used) == ("gpu_seconds_per_month", 100, 100.5)
    assert full.value.resets_at == datetime(2025, 2, 1, tzinfo=UTC)
    with pytest.raises(
        (rushes.QuotaExceededError, rushes.PayloadTooLargeError, rushes.RateLimitError)
    ) as bare:
        client.me.get()
    assert (bare.value.quota, bare.value.limit, bare.value.used, bare.value.resets_at) == (None,) * 4
    if status == 429:
        assert isinstance(full.value, rushes.RateLimitError) and full.value.retry_after == 12.0
        assert isinstance(bare.value, rushes.RateLimitError) and bare.value.retry_after is None


def test_a_new_user_signs_up_and_makes_a_first_key_with_the_session(live_server: LiveServer) -> None:
    email = f"first-{uuid.uuid4().hex[:8]}@example.com"
    session = rushes.sign_up(email=email, password=PASSWORD, tenant_name="First", base_url=live_server.url)
    assert session.me.email == email and session.me.role == "owner" and session.base_url == live_server.url
    with pytest.raises(rushes.ConflictError):
        rushes.sign_up(email=email, password=PASSWORD, tenant_name="Again", base_url=live_server.url)
    with pytest.raises(rushes.BadRequestError):
        rushes.sign_up(email="not an email", password=PASSWORD, tenant_name="X", base_url=live_server.url)

    with rushes.Client(session=session.cookies, base_url=session.base_url) as by_session:
        assert by_session.api_key is None and by_session.me.get().tenant.name == "First"
        key = by_session.api_keys.create(name="first").key
    with rushes.Client(api_key=key, base_url=live_server.url) as by_key:
        assert by_key.me.get().email == email

    with pytest.raises(rushes.AuthenticationError):
        rushes.log_in(email=email, password="not the password", base_url=live_server.url)
    again = rushes.log_in(email=email, password=PASSWORD, base_url=live_server.url)
    assert again.me.tenant.id == session.me.tenant.id and again.cookies != session.cookies
    with rushes.Client(session=again.cookies, base_url=live_server.url) as signed_in:
        signed_in.auth.log_out()
        with pytest.raises(rushes.AuthenticationError):
            signed_in.me.get()


def test_a_refused_key_is_named_without_its_secret(live_server: LiveServer, api_key: str) -> None:
    wrong = api_key[:-6] + "XXXXXX"  # the right prefix, the wrong secret
    with pytest.raises(rushes.AuthenticationError) as refused:
        rushes.Client(api_key=wrong, base_url=live_server.url).me.get()
    prefix = api_key.split("_")[1]
    port = live_server.url.rsplit(":", 1)[1]
    assert refused.value.message.startswith(
        f"The API key rsh_{prefix}_... was not accepted by 127.0.0.1:{port}: it is unknown there,"
    )
    assert wrong.split("_", 2)[2] not in str(refused.value)


def test_billing(live_server: LiveServer, client: rushes.Client) -> None:
    billing = client.billing.get()
    assert isinstance(billing, types.Billing)
    assert (billing.enabled, billing.status, billing.plan, billing.has_customer) == (
        False,
        "active",
        "default",
        False,
    )
    # Stripe is off on this server: no portal to open.
    with pytest.raises(rushes.ConflictError, match="Billing is not enabled"):
        client.billing.portal()
    with rushes.Client(api_key=live_server.admin_api_key(), base_url=live_server.url) as admin:
        seen = admin.admin.tenants.billing(client.me.get().tenant.id)
    assert isinstance(seen, types.TenantBilling)
    assert (seen.enabled, seen.stripe_customer_id, seen.sent_entries, seen.unsent_entries) == (
        False,
        None,
        0,
        0,
    )


async def test_async_billing(live_server: LiveServer, api_key: str) -> None:
    async with rushes.AsyncClient(api_key=api_key, base_url=live_server.url) as client:
        billing = await client.billing.get()
        assert (billing.status, billing.plan) == ("active", "default")
        with pytest.raises(rushes.ConflictError):
            await client.billing.portal()


def test_every_request_says_which_sdk_sends_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Calls, a storage redirect's target and sign-in (which has a client of its own) alike."""
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path.endswith("/outputs/video.mp4"):
            return httpx.Response(302, headers={"location": "https://storage.example/video.mp4"})
        if request.url.host == "storage.example":
            return httpx.Response(200, content=iter([b"frames"]))
        return httpx.Response(401, json={"status": 401, "detail": "no"})

    transport = httpx.MockTransport(answer)
    with rushes.Client(api_key="rsh_x", transport=transport, max_retries=0) as client:
        with pytest.raises(rushes.AuthenticationError):
            client.me.get()
        client.generations.download("g1", tmp_path / "video.mp4")
    plain_client = httpx.Client
    monkeypatch.setattr(httpx, "Client", lambda **options: plain_client(transport=transport, **options))
    with pytest.raises(rushes.AuthenticationError):
        rushes.log_in(email="a@example.com", password=PASSWORD)

    assert [(r.url.host, r.url.path) for r in seen] == [
        ("127.0.0.1", "/v1/me"),
        ("127.0.0.1", "/v1/generations/g1/outputs/video.mp4"),
        ("storage.example", "/video.mp4"),
        ("127.0.0.1", "/v1/auth/login"),
    ]
    agent = f"rushes-python/{rushes.__version__} python/{platform.python_version()}"
    assert [r.headers.get("user-agent") for r in seen] == [agent] * 4
    assert "authorization" not in seen[2].headers  # the key never goes to storage
