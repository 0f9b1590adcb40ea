from __future__ import annotations

from base64 import b64encode
from uuid import UUID

from litestar import Controller, Response, delete, get, patch, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from litestar.response import Stream
from sqlalchemy.ext.asyncio import AsyncSession

from core.storage import ObjectStorage, TenantKeys, content_disposition
from core.storage.keys import MODEL_CARD_FILE
from service.audit.record import downloaded
from service.auth.policy import Access, access
from service.db.pagination import PageRequest, page_body
from service.downloads import RANGE_RESPONSES, RangeHeader, object_response
from service.models import card, service
from service.models.schemas import Guardrails, ModelOut, ModelUpdate, ModelVersionOut
from service.params import Number
from service.schemas import Page

_VERSION = "/{model_id:uuid}/versions/{number:int}"


class ModelController(Controller):
    path = "/v1/models"
    tags = ["models"]

    @get(operation_id="listModels", opt=access(Access.MEMBER))
    async def list_models(
        self, db_session: NamedDependency[AsyncSession], page: NamedDependency[PageRequest]
    ) -> Page[ModelOut]:
        items, total = await service.list_models(db_session, page)
        return Page[ModelOut].model_validate(page_body(items, total, page))

    @get("/{model_id:uuid}", operation_id="getModel", opt=access(Access.MEMBER))
    async def get_model(
        self, model_id: FromPath[UUID], db_session: NamedDependency[AsyncSession]
    ) -> ModelOut:
        return ModelOut.model_validate(await service.get_model(db_session, model_id))

    @patch("/{model_id:uuid}", operation_id="updateModel", opt=access(Access.MEMBER))
    async def update(
        self, model_id: FromPath[UUID], data: JSONBody[ModelUpdate], db_session: NamedDependency[AsyncSession]
    ) -> ModelOut:
        return ModelOut.model_validate(await service.update_model(db_session, model_id, data))

    @delete("/{model_id:uuid}", operation_id="deleteModel", opt=access(Access.OWNER))
    async def delete_model(
        self,
        model_id: FromPath[UUID],
        db_session: NamedDependency[AsyncSession],
        storage: NamedDependency[ObjectStorage],
    ) -> None:
        await service.delete_model(db_session, storage, model_id)

    @get("/{model_id:uuid}/guardrails", operation_id="getModelGuardrails", opt=access(Access.MEMBER))
    async def get_guardrails(
        self, model_id: FromPath[UUID], db_session: NamedDependency[AsyncSession]
    ) -> Guardrails:
        return Guardrails.model_validate((await service.get_model(db_session, model_id)).guardrails)

    @put("/{model_id:uuid}/guardrails", operation_id="setModelGuardrails", opt=access(Access.OWNER))
    async def set_guardrails(
        self, model_id: FromPath[UUID], data: JSONBody[Guardrails], db_session: NamedDependency[AsyncSession]
    ) -> Guardrails:
        """What generation requests on this model may ask for; applies to requests made from now on."""
        return await service.set_guardrails(db_session, model_id, data)

    @get("/{model_id:uuid}/versions", operation_id="listModelVersions", opt=access(Access.MEMBER))
    async def list_versions(
        self,
        model_id: FromPath[UUID],
        db_session: NamedDependency[AsyncSession],
        page: NamedDependency[PageRequest],
    ) -> Page[ModelVersionOut]:
        items, total = await service.list_versions(db_session, model_id, page)
        return Page[ModelVersionOut].model_validate(page_body(items, total, page))

    @get(_VERSION, operation_id="getModelVersion", opt=access(Access.MEMBER))
    async def get_version(
        self, model_id: FromPath[UUID], number: Number, db_session: NamedDependency[AsyncSession]
    ) -> ModelVersionOut:
        return ModelVersionOut.model_validate(await service.get_version(db_session, model_id, number))

    @get(
        f"{_VERSION}/adapter",
        operation_id="downloadModelAdapter",
        opt=access(Access.MEMBER),
        responses=RANGE_RESPONSES,
    )
    async def adapter(
        self,
        model_id: FromPath[UUID],
        number: Number,
        db_session: NamedDependency[AsyncSession],
        storage: NamedDependency[ObjectStorage],
        range_header: RangeHeader = None,
    ) -> Stream:
        """The LoRA as one ``.safetensors`` file that diffusers' ``load_lora_weights`` reads."""
        version = await service.get_version(db_session, model_id, number)
        await downloaded(db_session, version, "adapter_downloaded", range_header)
        return object_response(
            storage,
            TenantKeys(version.tenant_id).adapter_file(version.id),
            size=version.adapter_bytes,
            media_type="application/octet-stream",
            range_header=range_header,
            headers={
                "content-disposition": content_disposition(f"model-v{version.number}.safetensors"),
                # The whole file's digest, on a range too: a resumed download checks the file it rebuilt.
                "repr-digest": f"sha-256=:{b64encode(bytes.fromhex(version.adapter_sha256)).decode()}:",
            },
        )

    @get(f"{_VERSION}/record", operation_id="getModelTrainingRecord", opt=access(Access.MEMBER))
    async def record(
        self,
        model_id: FromPath[UUID],
        number: Number,
        db_session: NamedDependency[AsyncSession],
        storage: NamedDependency[ObjectStorage],
    ) -> Stream:
        """What the version was trained on: each asset's sha256 and rights, the base, the settings."""
        version = await service.get_version(db_session, model_id, number)
        await downloaded(db_session, version, "record_downloaded")
        key = TenantKeys(version.tenant_id).training_record(version.id)
        return Stream(storage.iter_chunks(key), media_type="application/json")

    @get(
        f"{_VERSION}/card",
        operation_id="getModelCard",
        opt=access(Access.MEMBER),
        media_type=card.MEDIA_TYPE,
    )
    async def card(
        self,
        model_id: FromPath[UUID],
        number: Number,
        db_session: NamedDependency[AsyncSession],
        storage: NamedDependency[ObjectStorage],
    ) -> Response[bytes]:
        """The version's model card (``README.md``, Hugging Face format): base, trigger word,
        settings, the look it learned and every clip it was trained on, by hash and rights."""
        version = await service.get_version(db_session, model_id, number)
        return Response(
            await service.card_text(db_session, storage, version),
            media_type=card.MEDIA_TYPE,
            headers={"content-disposition": content_disposition(MODEL_CARD_FILE)},
        )
