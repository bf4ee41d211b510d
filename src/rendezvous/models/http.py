"""A model served elsewhere, over HTTP: MLflow's scoring protocol or the Open Inference Protocol.

``protocol: mlflow`` posts ``{"dataframe_split": {"columns": [...], "data": [[...]]}}`` and
reads ``{"predictions": [...]}`` (or a bare list); a prediction may be a mapping
``{"prediction": …, "probabilities": [...]}``. ``protocol: oip`` (KServe V2) posts one FP64
tensor to ``…/v2/models/{name}/infer`` and reads the first output as predictions and an
output named like ``probabilities`` / ``predict_proba`` as probabilities. Without the option,
a URL containing ``/v2/models/`` means ``oip``.

Every failure — timeout, refused connection, non-2xx answer, malformed body — becomes a
:class:`~rendezvous.errors.ModelError` naming the model and the URL.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import httpx
import orjson

from ..config import Deployment, ModelConfig
from ..errors import ModelError, ModelLoadError
from ._loading import check_options, make_info, option_classes, where
from .base import AsyncModel, Matrix, ModelInfo, Output
from .http_protocols import PROTOCOLS, Protocol

__all__ = ["HttpModel", "load_http"]

OPTIONS = {"protocol", "timeout_ms", "headers", "classes", "input_name"}


class HttpModel(AsyncModel):
    """A remote model; ``aclose`` closes its connection pool."""

    def __init__(
        self,
        info: ModelInfo,
        url: str,
        protocol: Protocol,
        client: httpx.AsyncClient,
        timeout_s: float = 1.0,
    ) -> None:
        super().__init__(info)
        self.url = url
        self.protocol = protocol
        self.client = client
        self._timeout_s = timeout_s

    async def predict(self, rows: Matrix) -> Output:
        body = self.protocol.encode(rows, self.info.features)
        try:
            # httpx's timeout limits each phase (connect, write, read); this one the total.
            async with asyncio.timeout(self._timeout_s):
                response = await self.client.post(
                    self.url, content=body, headers={"content-type": "application/json"}
                )
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise self._error(f"no answer within {self._timeout_s * 1000:g} ms") from exc
        except httpx.HTTPError as exc:
            raise self._error(f"request failed: {type(exc).__name__}: {exc}") from exc
        if not response.is_success:
            text = response.text[:200]
            raise self._error(f"answered HTTP {response.status_code}: {text}")
        try:
            data = orjson.loads(response.content)
        except orjson.JSONDecodeError as exc:
            raise self._error(f"answered malformed JSON: {exc}") from exc
        try:
            output = self.protocol.decode(data)
        except (ValueError, TypeError, KeyError) as exc:
            raise self._error(f"answered an unexpected body: {exc}") from exc
        if len(output.predictions) != rows.shape[0]:
            raise self._error(
                f"answered {len(output.predictions)} predictions for {rows.shape[0]} rows"
            )
        return output

    def _error(self, what: str) -> ModelError:
        return ModelError(f"model '{self.name}' at {self.url}: {what}")

    async def aclose(self) -> None:
        await self.client.aclose()


def load_http(
    cfg: ModelConfig, deployment: Deployment, transport: httpx.AsyncBaseTransport | None = None
) -> HttpModel:
    options = check_options(cfg, OPTIONS)
    url = cfg.source or ""
    name = options.get("protocol") or ("oip" if "/v2/models/" in url else "mlflow")
    if name not in PROTOCOLS:
        raise ModelLoadError(
            f"{where(cfg)}: options.protocol must be one of {sorted(PROTOCOLS)}, got {name!r}"
        )
    timeout_ms = options.get("timeout_ms", 1000)
    if not isinstance(timeout_ms, int | float) or isinstance(timeout_ms, bool) or timeout_ms <= 0:
        raise ModelLoadError(f"{where(cfg)}: options.timeout_ms must be a positive number")
    headers = options.get("headers", {})
    if not isinstance(headers, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        raise ModelLoadError(f"{where(cfg)}: options.headers must map names to strings")
    input_name = options.get("input_name", "input")
    if not isinstance(input_name, str):
        raise ModelLoadError(f"{where(cfg)}: options.input_name must be a string")
    protocol = PROTOCOLS[name](input_name=input_name)
    client = httpx.AsyncClient(
        timeout=httpx.Timeout(timeout_ms / 1000), headers=dict(headers), transport=transport
    )
    info = make_info(cfg, deployment, "remote", option_classes(cfg), url=url, protocol=name)
    return HttpModel(info, url, protocol, client, timeout_ms / 1000)
