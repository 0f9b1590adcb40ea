from __future__ import annotations

from rushes import types
from rushes._base import Op, nothing
from rushes._resource import R, Resource, endpoint, list_op, paginated, path_segment


class ApiKeys(Resource[R]):
    @endpoint
    def create(self, *, name: str) -> Op[types.ApiKeyWithSecret]:
        """A new key for the current tenant; its secret (``.key``) is shown only this once."""
        return Op("POST", "/v1/api-keys", types.ApiKeyWithSecret.from_json, json={"name": name})

    @paginated
    def list(self, *, limit: int | None = None) -> Op[types.Page[types.ApiKey]]:
        return list_op("/v1/api-keys", types.ApiKey.from_json, limit)

    @endpoint
    def revoke(self, key_id: str) -> Op[None]:
        return Op("DELETE", f"/v1/api-keys/{path_segment(key_id)}", nothing)
