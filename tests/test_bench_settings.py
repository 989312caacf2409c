"""The fine-tuning benches' `--set FIELD=JSON` changes: applied to the Train page's defaults, or a clear error."""

from __future__ import annotations

import sys

import pytest

from catseg.config import FINE_TUNE_LEARNING_RATE
from conftest import REPOSITORY_ROOT

sys.path.insert(0, str(REPOSITORY_ROOT / "bench"))
from finetune_starter import page_fine_tune_config  # noqa: E402


def test_the_page_defaults_with_changes():
    assert page_fine_tune_config([]).learning_rate == FINE_TUNE_LEARNING_RATE
    changed = page_fine_tune_config(["learning_rate=0.0003", "freeze_batch_norm=false"])
    assert (changed.learning_rate, changed.freeze_batch_norm) == (0.0003, False)


@pytest.mark.parametrize("setting, message", [
    ("learnin_rate=0.001", "TrainConfig has no field learnin_rate"),
    ("learning_rate=fast", "write FIELD=VALUE with a JSON value"),
    ("learning_rate", "write FIELD=VALUE with a JSON value"),
    ("learning_rate=-1", "learning_rate must be"),
])
def test_a_wrong_setting_is_a_value_error_that_says_what_to_write(setting, message):
    with pytest.raises(ValueError, match=message):
        page_fine_tune_config([setting])
