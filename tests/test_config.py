import re
import subprocess
import sys

import pytest

from lab.config import ConfigError, load_config


def test_defaults_file_and_overrides(tmp_path):
    assert load_config(None).n_ctx == 2048
    cfg = tmp_path / "lab.toml"
    cfg.write_text("n_ctx = 4096\n[generation]\nmax_tokens = 64\n")
    c = load_config(cfg)
    assert c.n_ctx == 4096 and c.generation.max_tokens == 64
    assert load_config(cfg, n_ctx=1024, default_model=None).n_ctx == 1024  # flags win; None ignored


def test_bad_config_names_the_field(tmp_path):
    cfg = tmp_path / "lab.toml"
    cfg.write_text("n_ctx = 10\n")
    with pytest.raises(ConfigError, match="n_ctx"):
        load_config(cfg)
    cfg.write_text("n_ctx = = 1\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(cfg)


def test_n_gpu_layers_defaults_to_automatic_and_is_checked(tmp_path):
    assert load_config(None).n_gpu_layers is None  # None: all layers when llama.cpp can offload
    cfg = tmp_path / "lab.toml"
    cfg.write_text("n_gpu_layers = 12\n")
    assert load_config(cfg).n_gpu_layers == 12
    assert load_config(cfg, n_gpu_layers=-1).n_gpu_layers == -1
    cfg.write_text("n_gpu_layers = -2\n")
    with pytest.raises(ConfigError, match="n_gpu_layers"):
        load_config(cfg)


def test_a_misspelt_key_is_an_error_naming_it_and_the_closest_valid_one(tmp_path):
    cfg = tmp_path / "lab.toml"
    cfg.write_text("n_ctxx = 4096\n")
    with pytest.raises(ConfigError, match=rf"{re.escape(str(cfg))}: unknown key 'n_ctxx', did you mean 'n_ctx'\?"):
        load_config(cfg)
    cfg.write_text("[generation]\nmax_token = 64\n")  # nested tables are checked too
    with pytest.raises(ConfigError, match=r"unknown key 'generation.max_token', did you mean 'generation.max_tokens'"):
        load_config(cfg)
    cfg.write_text("zzzz = 1\n")  # nothing close: list what is valid
    with pytest.raises(ConfigError, match=r"unknown key 'zzzz' \(valid keys: default_model, n_ctx"):
        load_config(cfg)


def test_the_cli_exits_2_on_a_misspelt_key_in_lab_toml(tmp_path):
    (tmp_path / "lab.toml").write_text("n_ctxx = 4096\n")
    proc = subprocess.run(
        [sys.executable, "-m", "lab", "--home", str(tmp_path), "models"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2, proc.stderr
    assert "lab.toml: unknown key 'n_ctxx', did you mean 'n_ctx'?" in proc.stderr
    assert "Traceback" not in proc.stderr
