import pytest

from lab.config import ConfigError, load_config


def test_defaults_file_and_overrides(tmp_path):
    assert load_config(None).n_ctx == 2048
    cfg = tmp_path / "lab.toml"
    cfg.write_text('n_ctx = 4096\n[generation]\nmax_tokens = 64\n')
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
