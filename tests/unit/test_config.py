"""Configuration: argument > environment variable > fti.toml > default, for every part."""

from __future__ import annotations

from pathlib import Path

import pytest

import fti
from fti.config import resolve_config

PARTS = ("offline", "online", "registry", "artifacts")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for var in ("FTI_HOME", *(f"FTI_{p.upper()}" for p in PARTS)):
        monkeypatch.delenv(var, raising=False)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


def write_toml(folder: Path, text: str) -> None:
    (folder / "fti.toml").write_text(text)


def test_defaults_live_under_dot_fti(clean_env: Path) -> None:
    cfg = resolve_config()
    root = clean_env.resolve() / ".fti"
    assert cfg.root == root
    assert cfg.offline == f"file://{root / 'offline'}"
    assert cfg.online == f"sqlite:///{root / 'online.db'}"
    assert cfg.registry == f"sqlite:///{root / 'registry.db'}"
    assert cfg.artifacts == f"file://{root / 'artifacts'}"
    assert all(cfg.sources[p] == "default" for p in ("root", *PARTS))


def test_root_precedence(clean_env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    write_toml(clean_env, 'root = "from_toml"\n')
    assert resolve_config().root == (clean_env / "from_toml").resolve()
    assert resolve_config().sources["root"].endswith("fti.toml")
    monkeypatch.setenv("FTI_HOME", str(tmp_path / "from_env"))
    assert resolve_config().root == (tmp_path / "from_env").resolve()
    assert resolve_config().sources["root"] == "FTI_HOME"
    assert resolve_config(tmp_path / "from_arg").root == (tmp_path / "from_arg").resolve()
    assert resolve_config(tmp_path / "from_arg").sources["root"] == "argument"


@pytest.mark.parametrize("part", PARTS)
def test_part_precedence(
    part: str, clean_env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def url(tag: str) -> str:
        path = tmp_path / f"{part}_{tag}"
        return f"sqlite:///{path}.db" if part in ("online", "registry") else f"file://{path}"

    assert resolve_config().sources[part] == "default"
    write_toml(clean_env, f'[store]\n{part} = "{url("toml")}"\n')
    cfg = resolve_config()
    assert (getattr(cfg, part), cfg.sources[part]) == (url("toml"), str(clean_env / "fti.toml"))
    monkeypatch.setenv(f"FTI_{part.upper()}", url("env"))
    cfg = resolve_config()
    assert (getattr(cfg, part), cfg.sources[part]) == (url("env"), f"FTI_{part.upper()}")
    cfg = resolve_config(**{part: url("arg")})
    assert (getattr(cfg, part), cfg.sources[part]) == (url("arg"), "argument")
    # the other parts are untouched by this part's settings
    for other in PARTS:
        if other != part:
            assert cfg.sources[other] == "default"


def test_parts_follow_the_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FTI_HOME", str(tmp_path / "home"))
    cfg = resolve_config()
    assert cfg.online == f"sqlite:///{(tmp_path / 'home').resolve() / 'online.db'}"
    assert cfg.offline == f"file://{(tmp_path / 'home').resolve() / 'offline'}"


def test_relative_paths_in_toml_are_relative_to_the_file(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = clean_env / "project"
    project.mkdir()
    write_toml(
        project,
        'root = "store"\noffline = "data/offline"\nonline = "data/online.db"\n'
        'registry = "sqlite:///abs/registry.db"\n',
    )
    other = clean_env / "elsewhere"
    other.mkdir()
    cfg = resolve_config(cwd=project)
    assert cfg.root == (project / "store").resolve()
    assert cfg.offline == f"file://{(project / 'data' / 'offline').resolve()}"
    assert cfg.online == f"sqlite:///{(project / 'data' / 'online.db').resolve()}"
    assert cfg.registry == "sqlite:///abs/registry.db"  # URLs are taken as they are
    # from another working directory, fti.toml of the project is not read
    monkeypatch.chdir(other)
    assert resolve_config().root == (other / ".fti").resolve()


def test_env_paths_without_scheme_become_urls(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FTI_ONLINE", "cache/online.db")
    monkeypatch.setenv("FTI_ARTIFACTS", "models")
    cfg = resolve_config()
    assert cfg.online == f"sqlite:///{(clean_env / 'cache' / 'online.db').resolve()}"
    assert cfg.artifacts == f"file://{(clean_env / 'models').resolve()}"


@pytest.mark.parametrize(
    ("part", "url", "known"),
    [
        ("online", "mysql://host/db", ["sqlite", "redis", "rediss"]),
        ("registry", "mongodb://host/db", ["sqlite", "postgresql", "postgresql+psycopg"]),
        ("offline", "s4://bucket/x", ["file", "s3"]),
        ("artifacts", "ftp://host/x", ["file", "s3"]),
    ],
)
def test_unknown_scheme_lists_the_known_ones(
    part: str, url: str, known: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    scheme = url.split("://")[0]
    with pytest.raises(fti.ConfigError) as by_argument:
        resolve_config(**{part: url})
    monkeypatch.setenv(f"FTI_{part.upper()}", url)
    with pytest.raises(fti.ConfigError) as by_env:
        resolve_config()
    for info in (by_argument, by_env):
        message = str(info.value)
        assert f"Unknown {part} URL scheme {scheme!r}" in message
        assert f"Known schemes for {part}: {known}" in message


def test_bad_toml_is_reported_with_the_file(clean_env: Path) -> None:
    write_toml(clean_env, "root = \n")
    with pytest.raises(fti.ConfigError, match=r"fti\.toml is not valid TOML"):
        resolve_config()
    write_toml(clean_env, 'rooot = "x"\n')
    with pytest.raises(fti.ConfigError, match=r"unknown key\(s\) \['rooot'\]. Known keys"):
        resolve_config()
    write_toml(clean_env, "online = 3\n")
    with pytest.raises(fti.ConfigError, match="'online' must be a string, got 3"):
        resolve_config()


def test_connect_uses_the_resolved_config(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_toml(clean_env, 'root = "tomlroot"\nonline = "elsewhere/online.db"\n')
    monkeypatch.setenv("FTI_REGISTRY", f"sqlite:///{clean_env / 'env_registry.db'}")
    with fti.connect() as fs:
        fg = fs.feature_group("c", primary_key=["k"], online=True)
        fg.insert([{"k": 1, "v": 1.0}])
        assert fs.config.root == (clean_env / "tomlroot").resolve()
    assert (clean_env / "tomlroot" / "offline" / "c_v1").is_dir()
    assert (clean_env / "elsewhere" / "online.db").is_file()
    assert (clean_env / "env_registry.db").is_file()
    assert not (clean_env / "tomlroot" / "registry.db").exists()


def test_mask_url_forms() -> None:
    from fti.config import mask_url

    assert mask_url("postgresql://u:p@h/db") == "postgresql://u:***@h/db"
    assert (
        mask_url("postgresql+psycopg://u:p%40ss@h:5432/db")
        == "postgresql+psycopg://u:***@h:5432/db"
    )
    assert mask_url("redis://:pw@h:6379/0?prefix=a") == "redis://:***@h:6379/0?prefix=a"
    assert mask_url("rediss://default:pw@h/0") == "rediss://default:***@h/0"
    assert mask_url("redis://h/0?password=pw&db=1") == "redis://h/0?password=***&db=1"
    assert mask_url("sqlite:////tmp/x/registry.db") == "sqlite:////tmp/x/registry.db"
    assert mask_url("redis://u@h/0") == "redis://u@h/0"  # no password: unchanged
    assert mask_url("at 'redis://:a@h' and 'postgresql://b:c@d/e'") == (
        "at 'redis://:***@h' and 'postgresql://b:***@d/e'"
    )


def test_store_config_repr_masks_passwords(tmp_path: Path) -> None:
    cfg = resolve_config(
        tmp_path, registry="postgresql://fti:hunter2@db/fti", online="redis://:pw9@h:6379/0"
    )
    shown = repr(cfg)
    assert "hunter2" not in shown
    assert "pw9" not in shown
    assert "postgresql://fti:***@db/fti" in shown
