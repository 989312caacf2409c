"""A fine-tune's score on the scored photos after every epoch, beside what its hold-out sees. Prints JSON.

`finetune.py` reports the model version a run keeps: the epoch its hold-out picked. This
bench shows the road there: it fine-tunes as the page's worker does (the Train page's
defaults, `--set` to change them; the run's own split of the imported photos) and scores
the photos the run never saw (`--score`, the same sets as `finetune.py`) with the starting
model's test-time views (and with one view at its own size) every `--every` epochs. One JSON
line per scored epoch, then a
summary: the starting score, the epoch the hold-out picked, the last epoch, and the best
scored epoch. The last is what a recipe that keeps its final weights would give; the best
is a peek at the scored photos, never a result.

`--all-photos` trains on every photo of `--train` and picks the epoch on them too (no
hold-out): what the training photos can teach when none is set aside.

    .venv/bin/python bench/finetune_curve.py --train seed --set max_seconds=600
    .venv/bin/python bench/finetune_curve.py --train seed --all-photos --set learning_rate=0.0003 --set epochs=20 --set max_seconds=null
    .venv/bin/python bench/finetune_curve.py --train feral-unseen --set learning_rate=0.0003 --every 5

Scoring costs time inside the run's budget (about 10 s for the 21 seed-cats photos, 60 s for
135 feral ones), so a scored run sees fewer epochs than an unscored one: compare curves
with the same `--every`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from _common import scratch_home
from finetune import add_fine_tune_arguments, parse_fine_tune_arguments, rounded, write_sets


def scorer(start_from: Path, scored: Path):
    """score(weights) -> mean IoUs on `scored` of the starting network holding `weights` (see below)."""
    from catseg.data.importing import iter_folder_pairs
    from catseg.predict.letterbox import predict_probability_at_scales
    from catseg.data.masks import iou
    from catseg.model.networks import at_input_size, build_model
    from catseg.model.versions import load_model_version
    from catseg.predict.predictor import TEST_TIME_SCALES, scaled_input_sizes

    _, model_config, card = load_model_version(start_from)
    network = build_model(model_config)  # float32, whatever policy the run trains under
    sizes = scaled_input_sizes(model_config.image_size, card.get("test_time_scales") or TEST_TIME_SCALES)
    views = [network] + [at_input_size(network, size) for size in sizes[1:]]
    flip = bool(card.get("test_time_flip", True))
    pairs = [(photo, truth > 0) for _, photo, truth in iter_folder_pairs(scored)]

    def score(weights) -> tuple[float, float]:
        """(mean IoU with the card's views, mean IoU with one view at the network's own size)."""
        network.set_weights([np.asarray(weight, dtype=np.float32) for weight in weights])
        with_views, one_view = [], []
        for photo, truth in pairs:
            with_views.append(iou(predict_probability_at_scales(views, photo, flip=flip) >= 0.5, truth))
            one_view.append(iou(predict_probability_at_scales(views[:1], photo) >= 0.5, truth))
        return float(np.mean(with_views)), float(np.mean(one_view))

    return score


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_fine_tune_arguments(parser)
    parser.add_argument("--every", type=int, default=1, help="score every N epochs (default 1)")
    parser.add_argument("--all-photos", action="store_true", help="no hold-out: train and pick on every photo")
    arguments, train_config = parse_fine_tune_arguments(parser)
    if arguments.every < 1:
        parser.error("--every must be 1 or more")

    with scratch_home("catseg-finetune-curve-") as scratch:
        try:
            folders, photos_per_set = write_sets(arguments, scratch / "sets")
        except (ValueError, OSError) as error:
            parser.error(str(error))

        import keras

        import storage
        from catseg.data.importing import import_path
        from catseg.model.versions import load_model_version, read_learnt_photos
        from catseg.model.registry import resolve_model
        from catseg.train.run_control import split_photos
        from catseg.train.fitting import train
        from storage import dataset

        start_from = resolve_model("starter")
        score = scorer(start_from, folders[arguments.score])
        starting, starting_one_view = score(load_model_version(start_from)[0].get_weights())
        print(json.dumps({"epoch": 0, "scored_iou_mean": rounded(starting),
                          "scored_iou_mean_one_view": rounded(starting_one_view)}), flush=True)

        import_path(folders[arguments.train])
        with storage.begin() as session:
            pairs = {photo_id: (photo, mask) for photo_id, photo, mask in dataset.labelled_pairs(session)}
            if arguments.all_photos:
                train_ids = validation_ids = list(pairs)
            else:
                train_ids, validation_ids = split_photos(dataset.labelled_content_hashes(session), train_config,
                                                         read_learnt_photos(start_from))
        curve: list[dict] = []
        last: dict = {}

        class ScoreEveryEpochs(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                last["weights"] = self.model.get_weights()
                last["epoch"] = epoch + 1
                if (epoch + 1) % arguments.every == 0:
                    with_views, one_view = score(last["weights"])
                    row = {"epoch": epoch + 1, "scored_iou_mean": rounded(with_views),
                           "scored_iou_mean_one_view": rounded(one_view),
                           "hold_out_iou": rounded((logs or {}).get("val_iou")),
                           "learning_rate": float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))}
                    curve.append(row)
                    print(json.dumps(row), flush=True)

        result = train(None, train_config, [pairs[i] for i in train_ids], [pairs[i] for i in validation_ids],
                       callbacks=[ScoreEveryEpochs()], initial_model_directory=start_from)
        picked = score(result.model.get_weights())[0]
        final = next((row["scored_iou_mean"] for row in curve if row["epoch"] == last["epoch"]), None)
        if final is None:
            final = rounded(score(last["weights"])[0])
        best = max(curve, key=lambda row: row["scored_iou_mean"]) if curve else None
    print(json.dumps({
        "train": arguments.train,
        "score": arguments.score,
        "all_photos": arguments.all_photos,
        "starting_iou_mean": rounded(starting),
        "starting_iou_mean_one_view": rounded(starting_one_view),
        "picked_epoch": int(result.best_metrics["epoch"]) + 1 if result.best_metrics else None,
        "picked_iou_mean": rounded(picked),
        "last_epoch": last.get("epoch"),
        "last_iou_mean": final,
        "best_scored_epoch_peeked": best,
        "hold_out_starting_iou": rounded(result.starting_metrics.get("val_iou")),
        "train_photos": len(train_ids),
        "hold_out_photos": len(validation_ids),
        "photos_per_set": photos_per_set,
        "stop_reason": result.stop_reason,
        "train_config": train_config.to_dict(),
    }))


if __name__ == "__main__":
    main()
