"""The Responses, Messages and health helpers, in async and plain checks, against the mock; the
health-path and embedding-model options and the ``embedding_model`` fixture."""

from __future__ import annotations

import fnmatch
import json

import pytest

HELPERS = """
import pytest

@pytest.mark.observatory(duration="30s", probes=2, max_failure_rate=0)
async def test_async_apis(deployment, model):
    response = await deployment.responses(model, "hi there", max_output_tokens=3)
    assert response["output"][0]["content"][0]["text"] == "tok1 tok2 tok3"
    assert response["usage"]["input_tokens"] == 2
    stream = await deployment.stream_responses(model, "hi", max_output_tokens=4)
    assert (stream.text, stream.finish_reason) == ("tok1 tok2 tok3 tok4", "completed")
    assert (stream.output_tokens, stream.tokens_source) == (4, "usage")
    message = await deployment.messages(model, "hi")
    assert message["content"][0]["text"].split()[-1] == "tok256"  # the default max_tokens
    stream = await deployment.stream_messages(model, [{"role": "user", "content": "a b"}],
                                              max_tokens=5)
    assert (stream.text, stream.finish_reason) == ("tok1 tok2 tok3 tok4 tok5", "max_tokens")
    assert stream.usage == {"input_tokens": 2, "output_tokens": 5}
    assert await deployment.health() == {"status": "ok"}  # --deployment-health-path=/health
    assert await deployment.health("/health/liveliness") == "I'm alive!"  # LiteLLM's, a string
    assert await deployment.health("/health/readiness") == {"status": "healthy"}

@pytest.mark.observatory(duration="30s", probes=2, max_failure_rate=0)
def test_sync_apis(deployment, model):
    assert deployment.responses(model, "hi")["status"] == "completed"
    assert deployment.stream_responses(model, "hi").text
    assert deployment.messages(model, "hi", max_tokens=2)["stop_reason"] == "max_tokens"
    assert deployment.stream_messages(model, "hi", max_tokens=2).text == "tok1 tok2"
    assert deployment.health("/health/liveliness") == "I'm alive!"
"""


def test_helpers_against_the_mock(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(HELPERS)
    report = pytester.path / "report.json"
    result = pytester.runpytest(
        "--deployment-url=mock",
        "--deployment-health-path=/health",
        f"--observatory-report={report}",
    )
    result.assert_outcomes(passed=2)
    checks = {c["nodeid"].split("::")[-1]: c for c in json.loads(report.read_text())["checks"]}
    # Every stream of both APIs is timed: 2 probes x 2 streams each.
    assert checks["test_async_apis"]["streams"]["count"] == 4
    assert checks["test_sync_apis"]["streams"]["count"] == 4


@pytest.mark.parametrize(
    ("knobs", "category", "message"),
    [
        (
            "stream_fault=error",
            "stream_truncated",
            "stream ended by an error event after * chunks: mock stream error (injected)",
        ),
        ("stream_fault=truncate", "stream_truncated", "stream cut off after*"),
        ("stream_fault=malformed", "bad_sse", "bad SSE data: '{not json'"),
        ("failure_rate=1", "http_5xx", "HTTP 500 from /v1/*: mock failure (injected*"),
    ],
)
def test_stream_faults_of_both_apis_are_classified(
    pytester: pytest.Pytester, knobs: str, category: str, message: str
) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.observatory(duration="30s", probes=2)
        async def test_responses(deployment, model):
            await deployment.stream_responses(model, "hi")

        @pytest.mark.observatory(duration="30s", probes=2)
        async def test_messages(deployment, model):
            await deployment.stream_messages(model, "hi")
        """
    )
    report = pytester.path / "report.json"
    url = f"--deployment-url=mock?tokens=5&stream_fault_after=1&{knobs}"
    result = pytester.runpytest(url, f"--observatory-report={report}")
    result.assert_outcomes(failed=2)
    for check in json.loads(report.read_text())["checks"]:
        assert check["error_categories"] == {category: 2}, check["nodeid"]
        (text,) = check["errors"]
        assert fnmatch.fnmatch(text, f"{category}: {message}"), text


CYCLE = """
import pytest

SEEN = []

@pytest.mark.observatory(duration="30s", probes=4, max_failure_rate=0)
async def test_embeddings_only(deployment, embedding_model):
    await deployment.embeddings(embedding_model, "x")

@pytest.mark.observatory(duration="30s", probes=3, max_failure_rate=0)
async def test_both(deployment, model, embedding_model):
    SEEN.append((model, embedding_model))

def test_seen():
    assert SEEN == [("mock-gpt-4o", "emb-a"), ("mock-gpt-4o-mini", "emb-b"),
                    ("mock-gpt-4o", "emb-a")]
"""


def test_embedding_model_cycles_the_embedding_models(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(CYCLE)
    report = pytester.path / "report.json"
    url = "--deployment-url=mock?models=mock-gpt-4o,mock-gpt-4o-mini,emb-a,emb-b"
    result = pytester.runpytest(
        url,
        "--models=mock-gpt-4o,mock-gpt-4o-mini",
        "--embedding-models=emb-a,emb-b",
        f"--observatory-report={report}",
        "-p",
        "no:randomly",
    )
    result.assert_outcomes(passed=3)
    checks = {c["nodeid"].split("::")[-1]: c for c in json.loads(report.read_text())["checks"]}
    # An embeddings-only check's per-model figures are the embedding models'.
    assert {m: f["probes"] for m, f in checks["test_embeddings_only"]["models"].items()} == {
        "emb-a": 2,
        "emb-b": 2,
    }


def test_a_check_needing_embedding_models_says_which_option(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.observatory(duration="1s")
        async def test_needs_embeddings(deployment, embedding_model):
            pass
        """
    )
    result = pytester.runpytest("--deployment-url=http://127.0.0.1:9")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*test_needs_embeddings: the check takes `embedding_model` but no embedding models are "
            "set: pass --embedding-models=a,b*"
        ]
    )


def test_health_path_precedence_cli_env_ini(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makeini("[pytest]\nobservatory_deployment_health_path = /from-ini\n")
    pytester.makepyfile(
        """
        def test_show(pytestconfig):
            from pytest_observatory.plugin import SETTINGS_KEY
            print("HEALTH=" + pytestconfig.stash[SETTINGS_KEY].health_path)
        """
    )
    pytester.runpytest("-s").stdout.fnmatch_lines(["*HEALTH=/from-ini"])
    monkeypatch.setenv("OBSERVATORY_DEPLOYMENT_HEALTH_PATH", "/from-env")
    pytester.runpytest("-s").stdout.fnmatch_lines(["*HEALTH=/from-env"])
    result = pytester.runpytest("-s", "--deployment-health-path=/from-cli")
    result.stdout.fnmatch_lines(["*HEALTH=/from-cli"])
