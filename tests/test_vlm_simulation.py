"""The VLM simulation score against a real HTTP server on 127.0.0.1 (tests/vlm_server.py).

The server answers each grid from ``VLMServer.contents`` (keyed by the grid's SHA-256), so a test
decides what a VLM "sees": the truth, every image, or prose without a list.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from vlm_server import VLMServer

from clipsae.interpret.scoring import DetectionSampling
from clipsae.interpret.vlm import VLMConfig
from clipsae.interpret.vlm.simulation import parse_numbers, plan_trials, simulate

KEY_ENV = "CLIPSAE_TEST_VLM_KEY"
SAMPLING = DetectionSampling(n_quantiles=3, per_quantile=2, n_negative=5, min_positive=2, seed=3)


@pytest.fixture
def server():
    with VLMServer() as running:
        yield running


@pytest.fixture
def trials():
    """Three latents on 60 rows: two fire on 20 rows each, one fires on a single row (unscored)."""
    rng = np.random.default_rng(0)
    activations = np.zeros((60, 3), dtype=np.float32)
    activations[:20, 0] = rng.uniform(0.1, 2.0, 20)
    activations[30:50, 1] = rng.uniform(0.1, 2.0, 20)
    activations[7, 2] = 1.0
    colours = rng.integers(0, 256, size=(60, 3))

    def open_row(row: int) -> Image.Image:
        return Image.new("RGB", (16, 16), tuple(int(c) for c in colours[row]))

    planned, unscored = plan_trials(
        [4, 8, 15], ["red", "blue", "rare"], activations, open_row=open_row, sampling=SAMPLING
    )
    assert unscored == [15]
    for trial in planned:
        assert trial.truth.sum() == 6 and (~trial.truth).sum() == 5
        column = activations[:, [4, 8].index(trial.latent)]
        np.testing.assert_array_equal(trial.truth, column[trial.rows] > 0)
    return planned


def config(server: VLMServer) -> VLMConfig:
    return VLMConfig(base_url=server.base_url, model="test/vlm", api_key_env=KEY_ENV,
                     timeout_s=5.0, backoff_factor=0.01, concurrency=2)  # fmt: skip


def answer(server: VLMServer, trial, numbers, *, wrap: str = "{}") -> None:
    server.contents[trial.sha256] = wrap.format(json.dumps(sorted(int(n) for n in numbers)))


def test_parse_numbers_reads_the_first_valid_list_in_prose_or_fences() -> None:
    assert parse_numbers("Sure.\n```json\n[2, 5]\n```\nThanks", 6) == {2, 5}
    assert parse_numbers("[] none of them", 6) == set()
    assert parse_numbers("tiles [0, 9] are out; I pick [1, 3]", 6) == {1, 3}
    assert parse_numbers('["one", 2]', 6) is None
    assert parse_numbers("images two and four", 6) is None
    assert parse_numbers("[true, 2]", 6) is None


def test_a_correct_vlm_scores_one_and_a_rerun_asks_nothing(server, trials, tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "sk-test")
    for trial in trials:
        answer(server, trial, np.flatnonzero(trial.truth) + 1, wrap="Here:\n```json\n{}\n```")
    first = simulate(trials, unscored=[15], config=config(server), cache_dir=tmp_path)
    assert server.count == 2
    scored = first.table.drop_nulls("accuracy")
    assert scored["latent"].to_list() == [4, 8]
    assert scored["accuracy"].to_list() == [1.0, 1.0] and scored["f1"].to_list() == [1.0, 1.0]
    assert first.table.filter(first.table["latent"] == 15)["status"].to_list() == ["unscored"]
    assert first.summary["median_accuracy"] == 1.0 and first.summary["median_f1"] == 1.0
    assert first.summary["counts"] == {"ok": 2, "unscored": 1}
    assert first.summary["requests"] == 2 and first.summary["cached"] == 0

    second = simulate(trials, unscored=[15], config=config(server), cache_dir=tmp_path)
    assert server.count == 2, "every answer came from the cache"
    assert second.summary["requests"] == 0 and second.summary["cached"] == 2
    assert second.table.equals(first.table)


def test_answering_all_scores_the_base_rate(server, trials, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(KEY_ENV, "sk-test")
    for trial in trials:
        answer(server, trial, range(1, len(trial.rows) + 1))
    result = simulate(trials, unscored=[], config=config(server), cache_dir=tmp_path)
    base_rate = 6 / 11
    np.testing.assert_allclose(result.table["accuracy"], base_rate)
    np.testing.assert_allclose(result.table["f1"], 2 * base_rate / (1 + base_rate))
    assert result.summary["median_base_rate"] == pytest.approx(base_rate)


def test_a_malformed_answer_is_counted_and_reported(server, trials, tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "sk-test")
    answer(server, trials[0], np.flatnonzero(trials[0].truth) + 1)
    server.contents[trials[1].sha256] = "I see red in images two and four."
    result = simulate(trials, unscored=[], config=config(server), cache_dir=tmp_path)
    assert server.count == 2, "a malformed answer is not asked again"
    assert result.summary["counts"] == {"malformed": 1, "ok": 1}
    assert result.summary["malformed"] == [trials[1].latent]
    assert result.summary["n_scored"] == 1


def test_without_a_key_nothing_is_asked_and_the_reason_is_given(server, trials, tmp_path):
    result = simulate(trials, unscored=[15], config=config(server), cache_dir=tmp_path)
    assert server.count == 0
    assert result.summary["skipped_reason"] == f"environment variable {KEY_ENV} is not set"
    assert result.summary["counts"] == {"skipped": 2, "unscored": 1}
    assert result.summary["median_accuracy"] is None
