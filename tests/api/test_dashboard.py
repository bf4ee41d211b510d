"""The live dashboard page and the data it polls."""

from __future__ import annotations

import httpx


async def test_live_data_follows_the_traffic(client: httpx.AsyncClient) -> None:
    for _ in range(5):
        await client.post("/v1/deployments/rules/predict", json={"input": [5000, 20]})
    await client.post("/v1/deployments/broken/predict", json={"input": [1, 2]})
    data = (await client.get("/v1/live")).json()
    assert data["ready"] is True
    by_name = {d["name"]: d for d in data["deployments"]}
    rules = by_name["rules"]
    assert rules["champion"] == "risk"
    assert rules["answered"] == 5
    assert rules["outcomes"]["champion"] == 5
    assert rules["p50_ms"] is not None and rules["p50_ms"] <= rules["p99_ms"]
    [risk] = rules["models"]
    assert risk["role"] == "champion"
    assert risk["batches"] >= 1
    assert by_name["broken"]["models"][0]["errors"] == 1


async def test_the_page_is_served_and_polls_the_live_data(client: httpx.AsyncClient) -> None:
    page = await client.get("/dashboard")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert 'fetch("/v1/live")' in page.text


def test_quantiles_are_read_from_cumulative_buckets() -> None:
    from rendezvous.api.dashboard import _quantile

    buckets = [(0.001, 0.0), (0.002, 50.0), (0.005, 100.0), (float("inf"), 100.0)]
    assert _quantile(buckets, 0.5) == 0.002
    assert abs(_quantile(buckets, 0.75) - 0.0035) < 1e-12  # type: ignore[operator]
    assert _quantile([], 0.5) is None
