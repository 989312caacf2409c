"""The benches' one `--set FIELD=JSON` parser: changes land on the right config, mistakes say what to write."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from catseg.model.config import FINE_TUNE_TRAINING, ModelConfig, TrainConfig

from _common import apply_settings, parse_settings
from finetune import page_fine_tune_config


def test_values_are_json():
    assert parse_settings(["learning_rate=0.0003", "augment=false", "max_seconds=null", "model=\"u2netp\""]) == {
        "learning_rate": 0.0003, "augment": False, "max_seconds": None, "model": "u2netp"}


def test_the_fine_tune_bench_starts_from_the_train_page_defaults():
    assert page_fine_tune_config([]) == FINE_TUNE_TRAINING
    changed = page_fine_tune_config(["learning_rate=0.0003", "freeze_batch_norm=false"])
    assert (changed.learning_rate, changed.freeze_batch_norm) == (0.0003, False)
    assert changed.max_seconds == TrainConfig().max_seconds  # the rest stays the page's


def test_each_field_goes_to_the_config_that_has_it():
    model_config, train_config = apply_settings(["image_size=192", "max_seconds=150"], ModelConfig(), TrainConfig())
    assert model_config == ModelConfig(image_size=192)
    assert train_config == TrainConfig(max_seconds=150)


@pytest.mark.parametrize("setting, message", [
    ("learnin_rate=0.001", "TrainConfig has no field learnin_rate"),
    ("image_size=192", "TrainConfig has no field image_size"),  # fine-tuning keeps the model's network
    ("learning_rate=fast", "write FIELD=VALUE with a JSON value"),
    ("learning_rate", "write FIELD=VALUE with a JSON value"),
    ("=0.001", "write FIELD=VALUE with a JSON value"),
    ("learning_rate=-1", "learning_rate must be"),
    ("augment=\"yes\"", "augment must be true or false"),
])
def test_a_wrong_setting_is_a_value_error_that_says_what_to_write(setting, message):
    with pytest.raises(ValueError, match=message):
        page_fine_tune_config([setting])
