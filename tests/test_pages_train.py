"""AppTest: the Train page starts a run, shows live metrics, stops it."""

import dataclasses

from streamlit.testing.v1 import AppTest

import storage
from catseg.model.config import FINE_TUNE_TRAINING
from catseg.model.registry import model_summary, starter_model_directory
from storage import runs
from conftest import REPOSITORY_ROOT
from conftest import add_labelled, run_status, wait_for

APP = str(REPOSITORY_ROOT / "app.py")


def open_train_page() -> AppTest:
    app = AppTest.from_file(APP, default_timeout=60)
    app.run()
    app.switch_page("pages/training.py")
    return app.run()


def test_start_watch_stop(catseg_home):
    add_labelled(6)
    app = open_train_page()
    assert not app.exception
    assert app.selectbox(key="train_start_from").value == "starter"  # the default start
    freeze = app.toggle(key="train_freeze_batch_norm")
    assert freeze.value is True and not freeze.disabled  # fine-tuning keeps batch norm fixed by default
    # A fine-tune shows the starting model's own network and size, read-only, not the scratch defaults.
    inherited_size = app.select_slider(key="train_image_size_of_starter")
    assert inherited_size.value == model_summary(starter_model_directory()).image_size and inherited_size.disabled
    assert app.selectbox(key="train_architecture_of_starter").value == "u2netp"
    assert app.select_slider(key="train_learning_rate_fine_tune").value == FINE_TUNE_TRAINING.learning_rate
    assert app.toggle(key="train_average_fine_tune").value is True  # a fine-tune keeps the weights' average
    # ... and zooms onto the cat in some draws, as the starter learnt (the fine-tune recipe's share).
    assert app.slider(key="train_close_up_fine_tune").value == FINE_TUNE_TRAINING.close_up_probability > 0
    app.selectbox(key="train_start_from").set_value("scratch").run()  # from scratch, tiny
    assert app.toggle(key="train_average").value is False
    assert app.toggle(key="train_freeze_batch_norm").disabled  # nothing to keep from random weights
    assert not app.select_slider(key="train_image_size").disabled
    assert app.select_slider(key="train_learning_rate").value == 1e-3  # from random weights
    app.select_slider(key="train_image_size").set_value(64)
    app.select_slider(key="train_batch_size").set_value(2)
    app.slider(key="train_minutes").set_value(2)
    assert app.slider(key="train_close_up").value == 0.0  # off unless asked for
    app.toggle(key="train_augment").set_value(False).run()
    assert app.slider(key="train_close_up").disabled  # close-ups are an augmentation
    app.toggle(key="train_augment").set_value(True).run()
    app.slider(key="train_close_up").set_value(0.3)
    app.run()
    app.button(key="train_start").click().run()
    assert not app.exception
    with storage.begin() as session:
        run_id = runs.latest_run(session).id
    assert run_status(run_id).train_config["close_up_probability"] == 0.3
    assert app.button(key="train_stop")  # the live panel replaced the settings
    wait_for(lambda: run_status(run_id).epoch >= 1, what="a finished epoch")
    app.run()
    assert any(f"Run #{run_id}" in s.value for s in app.subheader)
    assert len(app.get("vega_lite_chart")) >= 2  # loss and IoU charts
    app.button(key="train_stop").click().run()
    final = wait_for(lambda: (v := run_status(run_id)).status in ("stopped", "failed") and v, what="stop")
    assert final.status == "stopped", final.error
    app.run()
    assert not app.exception
    # The stopped run's best epoch became a version; fine-tuning it shows its own 64 px.
    with storage.begin() as session:
        version = runs.model_version_for_run(session, run_id)
    app.selectbox(key="train_start_from").set_value(str(version.id)).run()
    assert app.select_slider(key=f"train_image_size_of_{version.id}").value == 64
    assert not app.exception
    # Fine-tuning it: the page shows the starting model's score, the line the run has to beat.
    app.button(key="train_start").click().run()
    with storage.begin() as session:
        tuned_id = runs.latest_run(session).id
    assert tuned_id != run_id
    wait_for(lambda: run_status(tuned_id).starting_val_iou is not None, what="the starting score")
    starting = run_status(tuned_id).starting_val_iou
    app.run()
    assert any(f"starting model scored **{starting:.3f}**" in caption.value for caption in app.caption)
    app.button(key="train_stop").click().run()
    wait_for(lambda: not run_status(tuned_id).is_active, what="stop")
    app.run()
    history = app.dataframe[0].value
    assert list(history.loc[history["run"] == tuned_id, "started from"]) == [f"model #{version.id}"]
    assert list(history.loc[history["run"] == run_id, "started from"]) == ["random weights"]
    assert not app.exception


def test_start_is_refused_with_a_message_without_enough_photos(catseg_home):
    add_labelled(2)
    app = open_train_page()
    assert app.button(key="train_start").disabled
    assert "at least 4 labelled photos" in app.info[0].value


def test_a_run_that_ends_below_its_starting_model_says_so(catseg_home):
    from catseg.model.config import ModelConfig, TrainConfig

    add_labelled(4)
    with storage.begin() as session:
        run = runs.create_run(session, ModelConfig().to_dict(), TrainConfig().to_dict(), [1, 2, 3], [4], "starter")
        runs.record_starting_score(session, run.id, 0.712)
        runs.record_epoch(session, run.id, 1, {"loss": 0.9, "iou": 0.5, "val_loss": 1.0, "val_iou": 0.6}, 3.0, None)
        runs.finish_run(session, run.id, "finished")
    app = open_train_page()
    assert not app.exception
    assert any("ended below the model it started from: best 0.600 against 0.712" in message.value
               and "keeps preselecting the starter model" in message.value for message in app.warning)
    history = app.dataframe[0].value
    assert list(history["start val IoU"]) == [0.712] and list(history["started from"]) == ["starter model"]


def test_the_pretrained_u2netp_is_a_second_start(catseg_home):
    add_labelled(6)
    app = open_train_page()
    start = app.selectbox(key="train_start_from")
    assert start.options[:2] == ["the starter cat model (recommended)", "the pretrained U^2-Net-p (not yet shown cats)"]
    start.set_value("pretrained").run()
    assert not app.exception
    assert app.selectbox(key="train_architecture_of_pretrained").value == "u2netp"
    assert app.select_slider(key="train_image_size_of_pretrained").value == 320
    assert app.select_slider(key="train_learning_rate_fine_tune").value == FINE_TUNE_TRAINING.learning_rate


def test_the_common_case_is_one_screen_and_the_rest_waits_under_advanced_settings(catseg_home, monkeypatch):
    import catseg.train.run_control
    from catseg.model.config import ModelConfig

    add_labelled(6)
    started = []
    monkeypatch.setattr(catseg.train.run_control, "start_run",
                        lambda model_config, train_config, start_from, created_by=None: started.append(
                            (model_config, train_config, start_from)) or 1)
    app = open_train_page()
    assert not app.exception
    advanced = next(block for block in app.expander if block.label == "Advanced settings")
    inside = {widget.key for kind in ("selectbox", "select_slider", "slider", "number_input", "toggle")
              for widget in getattr(advanced, kind)}
    assert inside == {"train_architecture_of_starter", "train_image_size_of_starter", "train_epochs",
                      "train_batch_size", "train_patience", "train_learning_rate_fine_tune", "train_augment",
                      "train_close_up_fine_tune", "train_freeze_batch_norm", "train_average_fine_tune"}
    # Outside it: what to start from, for how long, and the button.
    assert app.selectbox(key="train_start_from").key not in inside
    assert app.slider(key="train_minutes").key not in inside
    app.slider(key="train_minutes").set_value(10)
    app.button(key="train_start").click().run()
    assert not app.exception
    (model_config, train_config, start_from), = started
    summary = model_summary(starter_model_directory())
    assert start_from == "starter"
    assert model_config == ModelConfig(architecture=summary.architecture, image_size=summary.image_size)
    # Untouched advanced settings are exactly the defaults a fine-tune gets from the CLI and the benches.
    assert train_config == dataclasses.replace(FINE_TUNE_TRAINING, max_seconds=600.0)


def test_the_page_says_how_many_photos_a_run_holds_out(catseg_home):
    import storage
    from catseg.model.config import TrainConfig
    from catseg.train.run_control import planned_split

    add_labelled(20)
    with storage.begin() as session:
        split = planned_split(session, TrainConfig())
    assert split.teach + split.held_out == 20 and split.held_out and not split.learnt
    app = open_train_page()
    words = next(caption.value for caption in app.caption if caption.value.startswith("20 labelled photos: "))
    assert words.startswith(f"20 labelled photos: {split.held_out} are held out")
    assert ("largely chance" in words) == (split.held_out < 5)  # a word on a hold-out of a few photos only


def test_the_page_says_which_photos_the_starting_model_learnt(catseg_home, tmp_path, monkeypatch):
    from catseg.model.versions import LEARNT_PHOTOS_FILENAME, learnt_photos_text
    from conftest import save_tiny_model
    from storage import dataset

    add_labelled(20)
    with storage.begin() as session:
        hashes = list(dataset.labelled_content_hashes(session).values())
    starter = save_tiny_model(tmp_path / "starter_model")
    monkeypatch.setenv("CATSEG_STARTER_MODEL", str(starter))
    learnt_file = starter / LEARNT_PHOTOS_FILENAME
    learnt_file.write_text(learnt_photos_text(hashes[:5]))
    app = open_train_page()
    assert not app.exception
    assert any(caption.value.startswith("20 labelled photos: 5 taught the starting model already, so they always teach")
               for caption in app.caption)
    # A start that learnt all but two photos can hold out one or two: the page says what that is worth.
    learnt_file.write_text(learnt_photos_text(hashes[:18]))
    app = open_train_page()
    assert any(caption.value.startswith("20 labelled photos: 18 taught the starting model already")
               and "largely chance" in caption.value for caption in app.caption)
    # From random weights nothing was learnt.
    app.selectbox(key="train_start_from").set_value("scratch").run()
    assert not any("taught the starting model" in caption.value for caption in app.caption)
    # A start that learnt every photo: the page says its hold-out will flatter it.
    learnt_file.write_text(learnt_photos_text(hashes))
    app = open_train_page()
    assert any(caption.value.startswith("20 labelled photos, all of which taught the starting model already")
               for caption in app.caption)
    # A damaged list is a warning, not a traceback, and the page still plans a split.
    learnt_file.write_text("not a hash\n")
    app = open_train_page()
    assert not app.exception
    assert any("damaged" in warning.value for warning in app.warning)
    assert any(caption.value.startswith("20 labelled photos: ") for caption in app.caption)


def test_the_page_says_what_the_minutes_buy_once_a_run_has_timed_this_network_here(catseg_home):
    from catseg.train.budget import StepTimes, record_step_times, run_network_key
    from catseg.model.config import ModelConfig
    from catseg.train.run_control import learnt_by, planned_split

    add_labelled(20)
    app = open_train_page()
    assert any(caption.value.startswith("How far these minutes go on this machine is known once a run")
               for caption in app.caption)
    # As a run of the starter's network at its size leaves them: 2 s a training photo, 1 s a held-out one.
    starter = model_summary(starter_model_directory())
    fine_tune = dataclasses.replace(FINE_TUNE_TRAINING, max_seconds=300.0)
    record_step_times(run_network_key(ModelConfig(architecture=starter.architecture, image_size=starter.image_size),
                                      fine_tune, fine_tune=True), StepTimes(2.0, 1.0, 10.0), catseg_home)
    with storage.begin() as session:
        split = planned_split(session, FINE_TUNE_TRAINING, learnt_by("starter"))
    app.run()
    words = next(caption.value for caption in app.caption if caption.value.startswith("On this machine "))
    # A pass: steps of 4 photos at 2 s a photo, and the held-out photos at 1 s; 290 s after the first step's extra.
    seconds_per_pass = -(-split.teach // 4) * 8 + split.held_out
    passes = 290 // seconds_per_pass
    assert passes < 10, "the drawn split should make the default budget too short"
    assert words.startswith(f"On this machine 5 minutes buy about {passes} passes over your {split.teach} training photos.")
    useful_minutes = -(-(10 + 10 * seconds_per_pass) // 60)
    assert words.endswith(f"give it about {useful_minutes} minutes."), words
    app.slider(key="train_minutes").set_value(20).run()
    words = next(caption.value for caption in app.caption if caption.value.startswith("On this machine "))
    assert words == (f"On this machine 20 minutes buy about {(1190 // seconds_per_pass)} passes over your "
                     f"{split.teach} training photos."), words
    assert not app.exception
