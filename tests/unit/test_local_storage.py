from __future__ import annotations

from pathlib import Path
from uuid import uuid4

import pytest

from core.storage import TenantKeys
from core.storage.local import LocalStorage


def test_local_backend_refuses_escaping_keys(tmp_path: Path) -> None:
    local = LocalStorage(tmp_path / "root")
    for bad in ("../outside", "tenants/../../x", "/etc/passwd", "tenants//x"):
        with pytest.raises(ValueError, match="invalid object key"):
            local.put_bytes(bad, b"x")


def test_keys_are_under_the_tenant() -> None:
    keys = TenantKeys(uuid4())
    asset, version, job = uuid4(), uuid4(), uuid4()
    built = [
        keys.footage(asset),
        keys.poster(asset),
        keys.cache(version),
        keys.checkpoints(job),
        keys.adapter(job),
        keys.outputs(job),
    ]
    assert all(key.startswith(f"tenants/{keys.tenant_id}/") for key in built)
    assert set(keys.asset_objects(asset)) == {keys.footage(asset), keys.poster(asset)}
