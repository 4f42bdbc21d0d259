"""s3:// URLs: options from the query string and env vars; credentials never in a URL."""

from __future__ import annotations

from pathlib import Path

import pytest

import fti
from fti._internal.s3_location import S3Location, credential_source
from fti.config import resolve_config

ENV = ("FTI_S3_ENDPOINT", "FTI_S3_PATH_STYLE", "FTI_S3_ALLOW_HTTP", "FTI_S3_COMMIT_LOCK")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (*ENV, "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_ACCESS_KEY_ID"):
        monkeypatch.delenv(name, raising=False)


def test_defaults_are_aws() -> None:
    loc = S3Location.parse("s3://bucket/team/offline")
    assert (loc.bucket, loc.prefix, loc.endpoint, loc.region) == (
        "bucket",
        "team/offline",
        None,
        "us-east-1",
    )
    assert (loc.path_style, loc.allow_http, loc.commit_lock) == (False, False, "conditional")
    assert loc.uri("fg_v1") == "s3://bucket/team/offline/fg_v1"
    assert loc.delta_options() == {"AWS_REGION": "us-east-1"}


def test_query_options_win_over_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FTI_S3_ENDPOINT", "https://elsewhere:9000")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    loc = S3Location.parse(
        "s3://b/p?endpoint=http://127.0.0.1:5000&path_style=true&commit_lock=registry"
    )
    assert loc.endpoint == "http://127.0.0.1:5000"
    assert loc.region == "eu-west-1"
    assert loc.allow_http  # an http:// endpoint allows plain HTTP by default
    assert loc.commit_lock == "registry"
    assert loc.delta_options() == {
        "AWS_REGION": "eu-west-1",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:5000",
        "AWS_FORCE_PATH_STYLE": "true",
        "AWS_ALLOW_HTTP": "true",
    }


def test_env_options(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FTI_S3_ENDPOINT", "https://minio.internal:9000")
    monkeypatch.setenv("FTI_S3_PATH_STYLE", "yes")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-south-1")
    loc = S3Location.parse("s3://b")
    assert (loc.endpoint, loc.path_style, loc.allow_http, loc.region, loc.prefix) == (
        "https://minio.internal:9000",
        True,
        False,
        "ap-south-1",
        "",
    )


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("s3://AKIA:secret@bucket/p", "must not carry credentials"),
        ("s3://bucket/p?aws_secret_access_key=x", "must not carry credentials"),
        ("s3://bucket/p?session_token=x", "must not carry credentials"),
        ("s3://bucket/p?colour=red", r"Unknown S3 option\(s\) \['colour'\]"),
        ("s3://bucket/p?path_style=maybe", "path_style='maybe' is not a boolean"),
        ("s3://bucket/p?commit_lock=dynamodb", "commit_lock='dynamodb' is unknown"),
        ("s3:///p", "names no bucket"),
    ],
)
def test_bad_urls_are_config_errors(url: str, match: str) -> None:
    with pytest.raises(fti.ConfigError, match=match):
        S3Location.parse(url)


def test_store_config_accepts_s3_and_rejects_credentials(tmp_path: Path) -> None:
    cfg = resolve_config(tmp_path, offline="s3://b/o", artifacts="s3://b/a?region=eu-west-1")
    assert (cfg.offline, cfg.artifacts) == ("s3://b/o", "s3://b/a?region=eu-west-1")
    with pytest.raises(fti.ConfigError, match="must not carry credentials"):
        resolve_config(tmp_path, offline="s3://key:secret@b/o")


def test_credential_source_names_the_source_not_the_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIASECRETVALUE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "verysecret")
    source = credential_source()
    assert "environment" in source
    assert "AKIASECRETVALUE" not in source
    assert "verysecret" not in source
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.setenv("AWS_PROFILE", "team")
    assert credential_source() == "profile 'team'"


def test_fti_toml_and_env_accept_s3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "fti.toml").write_text(
        '[store]\noffline = "s3://team/offline?region=eu-west-1"\nartifacts = "s3://team/art"\n'
    )
    monkeypatch.delenv("FTI_OFFLINE", raising=False)
    monkeypatch.delenv("FTI_ARTIFACTS", raising=False)
    cfg = resolve_config(cwd=tmp_path)
    assert (cfg.offline, cfg.artifacts) == ("s3://team/offline?region=eu-west-1", "s3://team/art")
    assert cfg.sources["offline"] == str(tmp_path / "fti.toml")
    monkeypatch.setenv("FTI_ARTIFACTS", "s3://other/art")
    cfg = resolve_config(cwd=tmp_path)
    assert (cfg.artifacts, cfg.sources["artifacts"]) == ("s3://other/art", "FTI_ARTIFACTS")
