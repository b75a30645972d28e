"""Embeddings whose shape stays put: one vector per input and the same dimension all run long.

Three hours of ``/v1/embeddings`` calls with a batch of three texts, cycling the embedding models
(``--embedding-models``), a 1 s pause after each. The first answer's dimension is remembered per
model; a probe fails if the vector count is not the input count, if the vectors of one answer
differ in length, or if the dimension changes (a redeploy that swapped the model behind a name
breaks every index built on the old vectors). The check fails above 1% failed probes.

    pytest suites/test_embeddings.py --deployment-url=https://gw.example \\
        --deployment-api-key="$KEY" --embedding-models=text-embedding-3-small
"""

from __future__ import annotations

import pytest

from pytest_observatory import AsyncDeployment

TEXTS = ["The quick brown fox.", "A release test of embeddings.", "Vectors must keep their shape."]
DIMENSIONS: dict[str, int] = {}  # model -> dimension of its first answer in this session


@pytest.mark.observatory(duration="3h", max_failure_rate=0.01, interval="1s")
async def test_embeddings(deployment: AsyncDeployment, embedding_model: str) -> None:
    reply = await deployment.embeddings(embedding_model, TEXTS)
    vectors = [item["embedding"] for item in reply["data"]]
    assert len(vectors) == len(TEXTS), f"{len(vectors)} vectors for {len(TEXTS)} inputs"
    lengths = sorted({len(vector) for vector in vectors})
    assert len(lengths) == 1, f"vectors of one answer differ in dimension: {lengths}"
    first = DIMENSIONS.setdefault(embedding_model, lengths[0])
    assert lengths[0] == first, (
        f"{embedding_model}: dimension changed from {first} to {lengths[0]} during the run"
    )
