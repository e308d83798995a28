import json

import pytest

from vinfo.models.config import CODEC_PRESETS, CodecConfig, codec_preset


@pytest.mark.parametrize("name", CODEC_PRESETS.names())
def test_preset_json_round_trip(name):
    config = codec_preset(name)
    assert CodecConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_ladder_grows_and_paper_matches_section_4():
    sizes = [codec_preset(name).M for name in ("tiny", "small", "paper")]
    assert sizes == sorted(sizes)
    assert codec_preset("paper").M == 192
    assert codec_preset("paper").head_variant == "paper"


def test_stage_channels_grow_to_M():
    channels = CodecConfig(N=8, M=16).stage_channels()
    assert channels[0] == 8 and channels[-1] == 16 and list(channels) == sorted(channels)


def test_layout_is_validated_and_records_of_linear_configs_stay_as_they_were():
    with pytest.raises(ValueError, match="layout must be one of"):
        CodecConfig(layout="wide")
    # a linear config writes the record it wrote before `layout` and `auxiliary_blocks`
    # existed (so finished runs still resume, old checkpoints still match), and such a record
    # loads as linear, g_a as the layout says
    linear = CodecConfig(N=8, M=16)
    assert "layout" not in linear.to_dict() and "auxiliary_blocks" not in linear.to_dict()
    assert CodecConfig.from_dict(linear.to_dict()) == linear
    assert CodecConfig.from_dict(linear.to_dict()).stage_channels() == (8, 11, 13, 16)
    assert linear.auxiliary_blocks is None and not linear.g_a_has_blocks()
    authors = linear.replace(layout="authors")
    assert authors.to_dict()["layout"] == "authors" and authors.g_a_has_blocks()
    assert CodecConfig.from_dict(json.loads(json.dumps(authors.to_dict()))) == authors


@pytest.mark.parametrize("layout", ["linear", "authors"])
@pytest.mark.parametrize("auxiliary_blocks", [True, False])
def test_an_explicit_auxiliary_blocks_is_recorded_and_wins_over_the_layout(layout,
                                                                          auxiliary_blocks):
    config = CodecConfig(N=8, M=16, layout=layout, auxiliary_blocks=auxiliary_blocks)
    record = json.loads(json.dumps(config.to_dict()))
    assert record["auxiliary_blocks"] is auxiliary_blocks
    assert CodecConfig.from_dict(record) == config
    assert config.g_a_has_blocks() is auxiliary_blocks


@pytest.mark.parametrize("value", [1, "yes"])
def test_auxiliary_blocks_is_validated(value):
    with pytest.raises(ValueError, match="auxiliary_blocks must be true, false or null"):
        CodecConfig(auxiliary_blocks=value)


def test_config_is_frozen_and_validated():
    config = codec_preset("tiny")
    with pytest.raises(AttributeError):
        config.M = 3
    with pytest.raises(ValueError, match="head_variant"):
        config.replace(head_variant="huge")
    with pytest.raises(ValueError, match="unknown CodecConfig keys"):
        CodecConfig.from_dict({"M": 8, "colour": 1})
