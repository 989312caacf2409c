"""The starter's model card text comes from measured numbers in its card.json."""

from __future__ import annotations

import sys

from conftest import REPOSITORY_ROOT


def card(test_time_scales=None) -> dict:
    row = {"epoch": 1, "stage": 1, "epoch_in_stage": 1, "image_size": 128, "loss": 0.5, "iou": 0.6,
           "val_loss": 0.55, "val_iou": 0.58, "learning_rate": 3e-4, "seconds": 80.0}
    result = {
        "model_config": {"architecture": "unet", "image_size": 160, "base_filters": 16},
        "train_config": {"batch_size": 4, "learning_rate": 3e-4, "augment": True, "validation_fraction": 0.1},
        "metrics": {"val_iou": 0.68},
        "about": {
            "data": [{"name": "feral-cats/train", "photos": 699, "licence": "Public Domain"}],
            "evaluation": [{"name": "feral-cats/valid", "photos": 195, "iou_mean": 0.7123, "iou_pooled": 0.72,
                            "dice_mean": 0.81, "threshold": 0.5}],
            "limits": ["It works on a {size}-pixel view of the photo."],
            "notes": [], "commands": ["python -m catseg train --size 128"], "parameters": 1967041,
            "epochs": 2, "best_epoch": 2, "stages": 2, "seconds": 200.0,
            "curve": [row, dict(row, epoch=2, stage=2, image_size=160)],
        },
    }
    if test_time_scales is not None:
        result["test_time_scales"] = test_time_scales
    return result


def test_model_card_names_the_sizes_that_were_used():
    from package_starter import model_card_markdown

    text = model_card_markdown(card())
    # The full set by default: scales 1x, 1.25x, 1.5x of 160, mirrored; the quick one: 1.25x alone.
    assert "averages every view this card names (the photo and its mirror image at 160, 192 and 256 px)" in text
    assert "quick views by default (the photo and its mirror image at 192 px)" in text
    assert "6 network runs a photo instead of 2" in text
    assert "It works on a 160-pixel view" in text
    assert "| 1 | 1 | 128 |" in text and "| 2 | 2 | 160 |" in text  # each stage's own input size
    assert "| feral-cats/valid | full | 195 | 0.7123 | 0.7200 | 0.810 |" in text
    assert "mirror image at 128, 160 and 192 px" in model_card_markdown(card([0.8, 1.0, 1.25]))
    assert "augmentation on, BCE" in text


def test_model_card_says_when_close_up_crops_were_used():
    from package_starter import model_card_markdown

    close_up = card()
    close_up["train_config"]["close_up_probability"] = 0.4
    assert "augmentation on, with close-up crops of the cat in 40% of the draws" in model_card_markdown(close_up)
    close_up["train_config"]["augment"] = False
    assert "augmentation off, BCE" in model_card_markdown(close_up)


def test_a_continued_starter_keeps_the_earlier_stages_in_its_curve():
    from package_starter import combined_curve

    earlier = card()["about"]
    new_rows = [{"epoch": 1, "loss": 0.4, "iou": 0.7, "val_loss": 0.5, "val_iou": 0.7, "learning_rate": 3e-4,
                 "seconds": 60.0},
                {"epoch": 2, "loss": 0.3, "iou": 0.8, "val_loss": 0.45, "val_iou": 0.72, "learning_rate": 1e-4,
                 "seconds": 120.0}]
    curve, stages = combined_curve(earlier, [(192, new_rows)])
    assert stages == 3
    assert [(row["epoch"], row["stage"], row["epoch_in_stage"], row["image_size"]) for row in curve] == [
        (1, 1, 1, 128), (2, 2, 1, 160), (3, 3, 1, 192), (4, 3, 2, 192)]
    assert earlier["curve"][1]["epoch"] == 2  # the earlier card is not changed
    fresh, fresh_stages = combined_curve(None, [(128, new_rows)])
    assert fresh_stages == 1 and [row["epoch"] for row in fresh] == [1, 2]


def test_model_card_gives_training_minutes_per_machine():
    from package_starter import model_card_markdown, seconds_by_hardware

    cpu_only = card()
    assert "200.0" not in model_card_markdown(cpu_only)
    assert "2 epochs in 2 stage(s), 3 minutes on a 2-core CPU," in model_card_markdown(cpu_only)
    by_hardware = seconds_by_hardware(cpu_only["about"], "one NVIDIA H100 GPU", 540.0)
    assert by_hardware == {"a 2-core CPU": 200.0, "one NVIDIA H100 GPU": 540.0}
    both = card()
    both["about"].update(seconds=740.0, seconds_by_hardware=by_hardware)
    assert "12 minutes (3 on a 2-core CPU, 9 on one NVIDIA H100 GPU)," in model_card_markdown(both)
    assert seconds_by_hardware(None, "a 2-core CPU", 60.0) == {"a 2-core CPU": 60.0}


def test_a_u2netp_starter_card_names_its_network_start_and_views():
    from package_starter import model_card_markdown

    u2netp = card([1.0, 1.25])
    u2netp["model_config"] = {"architecture": "u2netp", "image_size": 256, "base_filters": 16}
    u2netp["train_config"]["precision"] = "auto"
    u2netp["test_time_flip"] = False
    u2netp["about"]["started_from"] = "the pretrained U^2-Net-p"
    text = model_card_markdown(u2netp)
    assert "U^2-Net-p, Qin et al. 2020" in text and "see NOTICE" in text
    assert "- Started from: the pretrained U^2-Net-p." in text
    assert "deep supervision" in text
    assert "every view this card names (the photo at 256 and 320 px)" in text
    assert "base filters" not in text
