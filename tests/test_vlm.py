"""The VLM naming client against a real HTTP server on 127.0.0.1 (tests/vlm_server.py)."""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image
from vlm_server import Reply, VLMServer, default_content, image_of

from clipsae.commands import interpret_vlm
from clipsae.interpret.vlm import (
    VLMAuthError,
    VLMConfig,
    find_collages,
    name_collages,
    run_vlm_naming,
)
from clipsae.interpret.vlm.answer import answer_fields, build_prompt, message_text, parse_answer
from clipsae.runtime.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
KEY_ENV = "CLIPSAE_TEST_VLM_KEY"
KEY = "sk-test-0123456789abcdef-SECRET"
FIELDS = answer_fields(["en", "ru"])
NAME = {
    "label_en": "red circles",
    "label_ru": "красные круги",
    "description_en": "Red circles.",
    "description_ru": "Красные круги.",
}


@pytest.fixture
def server():
    with VLMServer() as running:
        yield running


@pytest.fixture
def key(monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    return KEY


def make_collages(folder: Path, n: int, *, server: VLMServer) -> Path:
    """``n`` distinct small JPEG collages of latents 10, 20, ...; the server learns their bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        colour = (37 * i % 256, 255 - 23 * i % 256, 90)
        Image.new("RGB", (24, 24), colour).save(folder / f"latent_{10 * (i + 1):05d}.jpg")
    server.add_collages(folder)
    return folder


def config(server: VLMServer, **overrides) -> VLMConfig:
    """Fast settings: tiny back-off so retries take milliseconds."""
    values = dict(
        base_url=server.base_url,
        model="test/vlm",
        api_key_env=KEY_ENV,
        timeout_s=5.0,
        backoff_factor=0.01,
        concurrency=1,
    )
    return VLMConfig(**(values | overrides))


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


# --- configuration and parsing -------------------------------------------------------------


def test_config_names_the_bad_key():
    with pytest.raises(ConfigError, match=r"interpret\.vlm: unknown key 'concurency' \(allowed: "):
        VLMConfig.from_mapping({"concurency": 2})
    bad = {
        "concurrency": 0,
        "languages": ["en", "xx"],
        "api_key_env": "1KEY",
        "base_url": "ftp://host",
        "temperature": True,
        "max_requests": -1,
    }
    with pytest.raises(ConfigError) as error:
        VLMConfig.from_mapping(bad)
    lines = str(error.value).splitlines()
    assert [line.split(":")[1].strip() for line in lines] == [
        "base_url", "api_key_env", "max_requests", "concurrency", "temperature", "languages",
    ]  # fmt: skip
    assert "interpret.vlm: concurrency: must be an integer in 1..64, got 0" in lines
    local = VLMConfig.from_mapping({"api_key_env": None, "languages": ["ru", "en"]})
    assert local.api_key_env is None and local.languages == ("ru", "en")
    assert VLMConfig().endpoint == "https://openrouter.ai/api/v1/chat/completions"


def test_parse_answer_accepts_fences_and_prose_and_rejects_missing_fields():
    body = json.dumps(NAME, ensure_ascii=False)
    assert parse_answer(body, FIELDS) == NAME
    assert (
        parse_answer(f"Sure! Here it is:\n```json\n{body}\n```\nHope this helps.", FIELDS) == NAME
    )
    assert parse_answer(f'Notes {{"x": 1}} then {{"a": "{{b}}"}} and {body}.', FIELDS) == NAME
    spaced = dict(NAME, label_en="  red\n circles ")
    assert parse_answer(json.dumps(spaced), FIELDS)["label_en"] == "red circles"
    assert (
        parse_answer(json.dumps({k: v for k, v in NAME.items() if k != "label_ru"}), FIELDS) is None
    )
    assert parse_answer(json.dumps(dict(NAME, label_ru="")), FIELDS) is None
    assert parse_answer(json.dumps(dict(NAME, label_ru=["a"])), FIELDS) is None
    assert parse_answer("These are red circles.", FIELDS) is None
    assert parse_answer('{"label_en": "red", "label_ru": ', FIELDS) is None
    parts = {"choices": [{"message": {"content": [{"type": "text", "text": "a"}, {"text": "b"}]}}]}
    assert message_text(parts) == "ab"
    assert message_text({"error": "x"}) == "" and message_text(None) == ""
    prompt = build_prompt(["en", "ru"])
    assert all(f'"{name}"' in prompt for name in FIELDS) and "Russian" in prompt


# --- the client against the server -----------------------------------------------------------


def test_happy_path_then_full_rerun_asks_nothing(server, key, tmp_path):
    collages = make_collages(tmp_path / "collages", 5, server=server)
    out, cache = tmp_path / "vlm.csv", tmp_path / "cache"
    cfg = config(server, concurrency=3)
    result = run_vlm_naming(collages, config=cfg, out_csv=out, cache_dir=cache)
    assert server.count == 5 and result.requests == 5 and result.cached == 0
    rows = read_csv(out)
    assert list(rows[0]) == ["latent", *FIELDS, "status"]
    assert [row["latent"] for row in rows] == ["10", "20", "30", "40", "50"]
    for row in rows:  # each answer went to its own latent, under concurrency
        assert {k: row[k] for k in FIELDS} == json.loads(default_content(int(row["latent"])))
        assert row["status"] == "ok"

    request = server.requests[0]
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["Authorization"] == f"Bearer {KEY}"
    assert request["body"]["model"] == "test/vlm" and request["body"]["temperature"] == 0.0
    text, image = request["body"]["messages"][0]["content"]
    assert text == {"type": "text", "text": build_prompt(["en", "ru"])}
    assert image["image_url"]["url"].startswith("data:image/jpeg;base64,")
    sent = sorted(image_of(r) for r in server.requests)
    assert sent == sorted(p.read_bytes() for p in collages.glob("*.jpg"))
    assert len(list(cache.glob("*.json"))) == 5

    first = out.read_bytes()
    again = run_vlm_naming(collages, config=cfg, out_csv=out, cache_dir=cache)
    assert server.count == 5 and again.requests == 0 and again.cached == 5
    assert out.read_bytes() == first


def test_429_with_retry_after_is_honoured(server, key, tmp_path):
    collages = find_collages(make_collages(tmp_path / "c", 1, server=server))
    server.script = [Reply(status=429, headers={"Retry-After": "1"}, body='{"error": "slow"}')]
    start = time.monotonic()
    result = name_collages(collages, config=config(server), cache_dir=tmp_path / "cache")
    elapsed = time.monotonic() - start
    assert server.count == 2 and result.counts() == {"ok": 1}
    assert 0.95 <= elapsed < 4  # slept Retry-After (the back-off alone is 0 on a first retry)


def test_5xx_then_success_and_retries_spent(server, key, tmp_path):
    collages = find_collages(make_collages(tmp_path / "c", 1, server=server))
    server.script = [Reply(status=500, body="boom"), Reply(status=503, body="busy")]
    result = name_collages(collages, config=config(server), cache_dir=tmp_path / "a")
    assert server.count == 3 and result.counts() == {"ok": 1}

    server.script = [Reply(status=502, body="down")] * 3
    failed = name_collages(collages, config=config(server, retries=2), cache_dir=tmp_path / "b")
    assert server.count == 6 and failed.counts() == {"error": 1} and failed.unnamed == [10]
    assert "HTTP 502" in failed.names[0].detail
    # an error is not cached: the rerun asks again
    rerun = name_collages(collages, config=config(server, retries=2), cache_dir=tmp_path / "b")
    assert server.count == 7 and rerun.counts() == {"ok": 1}


def test_stalled_answer_past_the_timeout_is_retried(server, key, tmp_path):
    collages = find_collages(make_collages(tmp_path / "c", 1, server=server))
    server.script = [Reply(delay=2.0)]
    start = time.monotonic()
    result = name_collages(collages, config=config(server, timeout_s=0.3), cache_dir=tmp_path / "x")
    assert server.count == 2 and result.counts() == {"ok": 1}
    assert time.monotonic() - start < 1.9  # gave up on the stalled one, did not wait it out


def test_non_json_is_asked_once_more_and_fenced_json_is_accepted(server, key, tmp_path):
    collages = find_collages(make_collages(tmp_path / "c", 2, server=server))
    fenced = f"Here you go:\n```json\n{json.dumps(NAME, ensure_ascii=False)}\n```"
    server.script = [Reply(content="These look like red circles to me."), Reply(content=fenced)]
    server.script.append(Reply(content=fenced))  # latent 20: fenced at once
    result = name_collages(collages, config=config(server), cache_dir=tmp_path / "cache")
    assert server.count == 3 and result.counts() == {"ok": 2}
    assert result.names[0].fields == NAME == result.names[1].fields


def test_malformed_twice_is_reported_and_cached(server, key, tmp_path):
    collages = find_collages(make_collages(tmp_path / "c", 1, server=server))
    partial = json.dumps({"label_en": "red"})
    server.script = [Reply(content="no idea"), Reply(content=partial)]
    result = name_collages(collages, config=config(server), cache_dir=tmp_path / "cache")
    assert server.count == 2 and result.counts() == {"malformed": 1} and result.unnamed == [10]
    assert '"label_en": "red"' in result.names[0].detail
    rerun = name_collages(collages, config=config(server), cache_dir=tmp_path / "cache")
    assert server.count == 2 and rerun.counts() == {"malformed": 1}


def test_a_malformed_answer_cut_off_by_the_budget_is_re_asked_once_on_rerun(server, key, tmp_path):
    collages = find_collages(make_collages(tmp_path / "c", 1, server=server))
    server.script = [Reply(content="no idea")]
    cfg = config(server, max_requests=1)
    first = name_collages(collages, config=cfg, cache_dir=tmp_path / "cache")
    assert server.count == 1 and first.counts() == {"budget": 1}
    second = name_collages(collages, config=cfg, cache_dir=tmp_path / "cache")
    assert server.count == 2 and second.counts() == {"ok": 1} and second.requests == 1


def test_wrong_key_stops_the_run_after_one_request(server, key, tmp_path):
    collages = find_collages(make_collages(tmp_path / "c", 6, server=server))
    server.script = [Reply(status=401, body=f'{{"error": "invalid key {KEY}"}}')] * 6
    with pytest.raises(VLMAuthError) as error:
        name_collages(collages, config=config(server, concurrency=4), cache_dir=tmp_path / "cache")
    message = str(error.value)
    assert server.count == 1
    assert message.startswith("HTTP 401 from ") and f"${KEY_ENV}" in message
    assert KEY not in message and "invalid key [redacted]" in message
    assert not list((tmp_path / "cache").glob("*"))


def test_budget_is_honoured_exactly_and_reruns_finish_the_job(server, key, tmp_path):
    collages = make_collages(tmp_path / "c", 7, server=server)
    out, cache, summary = tmp_path / "vlm.csv", tmp_path / "cache", tmp_path / "summary.json"
    cfg = config(server, max_requests=3, concurrency=3)
    result = run_vlm_naming(collages, config=cfg, out_csv=out, cache_dir=cache, summary=summary)
    assert server.count == 3 and result.requests == 3
    assert result.counts() == {"budget": 4, "ok": 3}
    statuses = {int(row["latent"]): row["status"] for row in read_csv(out)}
    assert sorted(k for k, v in statuses.items() if v == "budget") == result.unnamed
    assert len(result.unnamed) == 4 and json.loads(summary.read_text())["unnamed"] == result.unnamed
    assert all(row["label_en"] == "" for row in read_csv(out) if row["status"] == "budget")

    run_vlm_naming(collages, config=cfg, out_csv=out, cache_dir=cache)
    last = run_vlm_naming(collages, config=cfg, out_csv=out, cache_dir=cache)
    assert server.count == 7 and last.requests == 1 and last.counts() == {"ok": 7}


def test_requests_run_concurrently_up_to_the_limit(server, key, tmp_path):
    collages = find_collages(make_collages(tmp_path / "c", 9, server=server))
    server.script = [Reply(delay=0.3) for _ in range(9)]
    result = name_collages(collages, config=config(server, concurrency=4), cache_dir=tmp_path / "x")
    assert result.counts() == {"ok": 9} and server.count == 9
    assert 2 <= server.max_in_flight <= 4


def test_no_key_skips_without_requests(server, monkeypatch, tmp_path):
    monkeypatch.delenv(KEY_ENV, raising=False)
    collages = make_collages(tmp_path / "c", 3, server=server)
    out, summary = tmp_path / "vlm.csv", tmp_path / "summary.json"
    result = run_vlm_naming(
        collages, config=config(server), out_csv=out, cache_dir=tmp_path / "x", summary=summary
    )
    assert server.count == 0 and result.counts() == {"skipped": 3}
    assert result.skipped_reason == f"environment variable {KEY_ENV} is not set"
    assert [row["status"] for row in read_csv(out)] == ["skipped"] * 3
    assert json.loads(summary.read_text())["skipped_reason"] == result.skipped_reason


def test_keyless_local_server_gets_no_authorization_header(server, key, tmp_path):
    collages = find_collages(make_collages(tmp_path / "c", 2, server=server))
    result = name_collages(collages, config=config(server, api_key_env=None), cache_dir=tmp_path)
    assert result.counts() == {"ok": 2}
    assert all("Authorization" not in request["headers"] for request in server.requests)


def test_key_never_appears_in_cache_csv_summary_or_logs(server, key, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    collages = make_collages(tmp_path / "c", 3, server=server)
    echo = json.dumps(dict(NAME, description_en=f"The key is {KEY}."))
    server.script = [Reply(content=echo), Reply(status=400, body=f"bad request from {KEY}")]
    out, cache, summary = tmp_path / "vlm.csv", tmp_path / "cache", tmp_path / "summary.json"
    result = run_vlm_naming(
        collages, config=config(server), out_csv=out, cache_dir=cache, summary=summary
    )
    assert result.counts() == {"error": 1, "ok": 2}
    assert result.names[0].fields["description_en"] == "The key is [redacted]."
    assert result.names[1].detail.endswith("bad request from [redacted]")
    written = [out, summary, *cache.glob("*.json")]
    assert len(written) == 4
    for path in written:
        assert KEY not in path.read_text(encoding="utf-8"), path
    assert "[redacted]" in caplog.text and KEY not in caplog.text


def main(argv: list[str]) -> int:
    """``clipsae interpret-vlm`` in this process, without importing every other command (torch)."""
    parser = argparse.ArgumentParser()
    interpret_vlm.add_arguments(parser)
    assert argv[0] == "interpret-vlm"
    return interpret_vlm.run(parser.parse_args(argv[1:]))


def _cli(collages: Path, out: Path, cache: Path, server: VLMServer) -> list[str]:
    return ["interpret-vlm", "--collages", str(collages), "--out", str(out),
            "--cache", str(cache), "--base-url", server.base_url, "--model", "test/vlm",
            "--api-key-env", KEY_ENV, "--concurrency", "1"]  # fmt: skip


def test_killed_run_then_rerun_asks_only_for_what_is_missing(server, key, tmp_path):
    """SIGKILL the command while its fourth request is in flight; the rerun asks for 3 more."""
    collages = make_collages(tmp_path / "c", 6, server=server)
    out, cache = tmp_path / "vlm.csv", tmp_path / "cache"
    server.script = [Reply(), Reply(), Reply(), Reply(hold=True)]
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "clipsae", *_cli(collages, out, cache, server)],
        env=env, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not server.holding.wait(0.2):
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1]
        proc.send_signal(signal.SIGKILL)
        _, stderr = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert KEY not in stderr
    assert len(list(cache.glob("*.json"))) == 3 and not out.exists()
    server.release.set()

    assert main(_cli(collages, out, cache, server)) == 0
    assert server.count == 4 + 3
    assert [row["status"] for row in read_csv(out)] == ["ok"] * 6
    assert main(_cli(collages, out, cache, server)) == 0
    assert server.count == 7

    server.script = [Reply(status=403, body="forbidden")]
    next(cache.glob("*.json")).unlink()
    assert main(_cli(collages, out, cache, server)) == 2
    assert server.count == 8
