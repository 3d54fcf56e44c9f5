"""One source of truth per hyper-parameter: the recipe reads sample_rate and
max_num_src from its training configs, and the task hands sample_rate to the separator."""
import argparse

import pytest
import yaml

from espnet2_use.bin import use_config_values
from espnet2_use.bin.use_config_values import ConfigValueError, config_values
from espnet2_use.tasks.use import separator_conf_with_rate


def _config(path, sample_rate=8000, max_num_src=3):
    path.write_text(yaml.safe_dump({"sample_rate": sample_rate, "model_conf": {"max_num_src": max_num_src}}))
    return path


def test_values_come_from_the_configs(tmp_path, capsys):
    one, two = _config(tmp_path / "a.yaml"), _config(tmp_path / "b.yaml")
    assert config_values([one, two]) == (8000, 3)
    assert config_values([one], fs="8k", max_num_src=3) == (8000, 3)
    use_config_values.main(["--config", str(one), "--config", str(two)])
    assert capsys.readouterr().out.splitlines()[-1] == "8000 3"


def test_a_different_value_stops_with_both_named(tmp_path, capsys):
    one = _config(tmp_path / "a.yaml")
    with pytest.raises(ConfigValueError, match=r"--fs 16000 differs from sample_rate 8000 of .*a\.yaml"):
        config_values([one], fs="16000")
    with pytest.raises(ConfigValueError, match=r"--max_num_src 4 differs from model_conf.max_num_src 3"):
        config_values([one], max_num_src=4)
    two = _config(tmp_path / "b.yaml", sample_rate=16000)
    with pytest.raises(ConfigValueError, match=r"b\.yaml: sample_rate 16000 differs from sample_rate 8000"):
        config_values([one, two])
    (tmp_path / "c.yaml").write_text("model_conf: {max_num_src: 2}\n")
    with pytest.raises(SystemExit):
        use_config_values.main(["--config", str(tmp_path / "c.yaml")])
    assert "no sample_rate" in capsys.readouterr().err


def test_the_task_hands_sample_rate_to_a_band_split_backbone():
    args = argparse.Namespace(separator_conf={"backbone": "use_b", "backbone_conf": {"emb_dim": 8}},
                              sample_rate=16000)
    assert separator_conf_with_rate(args)["backbone_conf"] == {"emb_dim": 8, "fs": 16000}
    assert args.separator_conf["backbone_conf"] == {"emb_dim": 8}  # the config is left as it was
    args.separator_conf["backbone_conf"]["fs"] = 8000
    with pytest.raises(ValueError, match="backbone_conf.fs 8000 differs from sample_rate 16000"):
        separator_conf_with_rate(args)
    time_domain = argparse.Namespace(separator_conf={"backbone": "use_s"}, sample_rate=16000)
    assert separator_conf_with_rate(time_domain) == {"backbone": "use_s"}
