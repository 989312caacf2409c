"""Train: choose a recipe, start a run in the background, watch it learn, compare runs."""

import pandas as pd
import streamlit as st

import storage
from catseg.train.budget import USEFUL_PASSES, BudgetEstimate, budget_estimate, recorded_step_times, run_network_key
from catseg.model.config import FINE_TUNE_TRAINING, ModelConfig, TrainConfig
from catseg.model.registry import (PRETRAINED_DIRECTORY, model_summary, pretrained_model_available,
                             starter_model_available, starter_model_directory)
from catseg.train.run_control import (MINIMUM_LABELLED, PlannedSplit, RunProgress, learnt_by, planned_split, reap_dead_runs,
                         run_folder, run_minutes, run_progress, runs_here, start_run, stop_run)
from storage import dataset, runs
from team_access import current_author, require_sign_in
from wording import version_label

# Before anything of the dataset is read: also where Streamlit opens this file without the router.
require_sign_in()

# Networks to train from random weights; U^2-Net-p is fine-tuned from its pretrained weights instead.
ARCHITECTURE_LABELS = {
    "unet": "Recommended U-Net (batch norm)",
    "mobilenet_unet": "MobileNetV2 U-Net",
    "tutorial": "Tutorial U-Net (for comparison)",
}
NETWORK_LABELS = {**ARCHITECTURE_LABELS, "u2netp": "U^2-Net-p (pretrained salient-object network)"}
START_LABELS = {"starter": "the starter cat model (recommended)",
                "pretrained": "the pretrained U^2-Net-p (not yet shown cats)",
                "scratch": "random weights (from scratch)"}
STATUS_ICONS = {"starting": "⏳", "running": "🏃", "stopping": "✋", "finished": "✅", "stopped": "⏹️", "failed": "❌"}
DEFAULT_MODEL, DEFAULT_TRAINING = ModelConfig(), TrainConfig()
IMAGE_SIZES = [64, 96, 128, 160, 192, 224, 256]
FEW_HELD_OUT = 5  # below this many held-out photos, the epoch a run keeps is mostly noise

st.title("Train")

with storage.begin() as session:
    numbers = dataset.counts(session)
    versions = runs.list_model_versions(session)


def starting_network(start_from: str) -> tuple[str, int]:
    """(architecture, image size) of the model a fine-tune starts from: "starter", "pretrained" or a version id."""
    if start_from in ("starter", "pretrained"):
        summary = model_summary(starter_model_directory() if start_from == "starter" else PRETRAINED_DIRECTORY)
        return summary.architecture, summary.image_size
    version = next(version for version in versions if str(version.id) == start_from)
    return version.architecture, version.image_size


def start_label(initial_model: str | None) -> str:
    """How a run began, for the history table: random weights, the starter, a version, a folder."""
    if initial_model is None:
        return "random weights"
    if initial_model == "starter":
        return "starter model"
    if initial_model == "pretrained":
        return "pretrained U^2-Net-p"
    return f"model #{initial_model}" if initial_model.isdigit() else "a model folder"


def split_words(labelled: int, split: PlannedSplit) -> str:
    """Which labelled photos teach and which measure the run, and why the starting model's own photos teach."""
    if split.hold_out_flatters:
        return (f"{labelled} labelled photos, all of which taught the starting model already: the {split.held_out} "
                "held out to measure the run will flatter it. Label photos it has not seen for a fair measure.")
    if split.learnt:
        words = (f"{labelled} labelled photos: {split.learnt} taught the starting model already, so they always teach "
                 f"(held out, they would flatter it). Of the other {labelled - split.learnt}, {split.held_out} are "
                 "held out to measure the model (about a quarter, each photo always on the same side); the rest teach it.")
    else:
        words = (f"{labelled} labelled photos: {split.held_out} are held out to measure the model (about a quarter, "
                 "each photo always on the same side); the rest teach it.")
    if 0 < split.held_out < FEW_HELD_OUT:
        # Identical fine-tunes held out one photo and kept an early epoch in one run, a middle one in the next
        # (docs/benchmarks.md): a hold-out this small cannot tell epochs apart.
        words += (" With so few held out, which epoch the run keeps is largely chance: label more photos "
                  "the starting model has not seen for a steadier choice.")
    return words


def budget_words(estimate: BudgetEstimate | None, minutes: int, teach: int) -> str:
    """"On this machine 5 minutes buy about 4 passes over your 48 training photos." and, when that is
    too few to learn much, the minutes a useful run needs."""
    if estimate is None:
        return ("How far these minutes go on this machine is known once a run of this network at this size "
                "has finished here: every run measures its steps.")
    passes = "less than one pass" if estimate.passes == 0 else (
        f"about {estimate.passes} pass{'' if estimate.passes == 1 else 'es'}")
    budget = "1 minute buys" if minutes == 1 else f"{minutes} minutes buy"
    words = f"On this machine {budget} {passes} over your {teach} training photos."
    if estimate.too_short:
        words += (f" A run learns little in fewer than {USEFUL_PASSES}: give it about {estimate.useful_minutes} "
                  "minutes.")
    return words


def progress_text(progress: RunProgress) -> str:
    """"Epoch 3 of 40 · batch 5 of 8 · about 4 min left" under the progress bar."""
    if progress.loading:
        return "Loading photos and building the model…"
    text = f"Epoch {progress.epoch} of {progress.epochs} · batch {progress.batch} of {progress.batches_per_epoch}"
    left = progress.seconds_left
    if left is not None:
        text += f" · about {left / 60:.0f} min left" if left >= 90 else f" · about {left:.0f} s left"
    return text


def epoch_charts(run_id: int, starting_val_iou: float | None = None) -> None:
    """Loss and IoU, train against validation, per epoch; loss per batch underneath.

    starting_val_iou: a fine-tune's starting model on the same validation photos, drawn as a flat line.
    """
    with storage.begin() as session:
        epoch_table = pd.DataFrame(runs.epoch_rows(session, run_id))
        batch_table = pd.DataFrame(runs.batch_rows(session, run_id))
    if epoch_table.empty and batch_table.empty:
        st.caption("Charts appear after the first batches.")
        return
    loss_column, iou_column = st.columns(2)
    if not epoch_table.empty:
        with loss_column:
            st.markdown("**Loss** (lower is better)")
            st.line_chart(epoch_table.set_index("epoch")[["loss", "val_loss"]].rename(
                columns={"loss": "training", "val_loss": "validation"}), height=220)
        with iou_column:
            st.markdown("**Cat IoU** (higher is better, 1 = perfect)")
            iou_table = epoch_table.set_index("epoch")[["iou", "val_iou"]].rename(
                columns={"iou": "training", "val_iou": "validation"})
            if starting_val_iou is not None:
                iou_table["starting model (validation)"] = starting_val_iou
            st.line_chart(iou_table, height=220)
    if not batch_table.empty:
        st.markdown("**Loss per batch**")
        st.line_chart(batch_table.set_index("step")[["loss"]], height=160)
    if not epoch_table.empty and epoch_table["preview_file"].notna().any():
        last = epoch_table.dropna(subset=["preview_file"]).iloc[-1]
        preview = run_folder(run_id) / last["preview_file"]
        if preview.exists():
            st.image(str(preview), caption=f"Validation photo after epoch {int(last['epoch'])}: "
                     "photo · true mask · prediction", width="stretch")


@st.fragment(run_every=2)
def live_run() -> None:
    """Refreshes on its own every 2 s; any tab or refresh shows the same run."""
    try:
        reap_dead_runs()
        with storage.begin() as session:
            active = runs.active_run(session)
    except storage.DatabaseUnavailable as error:
        # A refresh of this panel alone, outside the router's net: say it here, and look again in 2 s.
        st.warning(f"{error}\n\nThe run itself goes on; this panel looks again every 2 s.", icon="🔌")
        return
    if active is None:
        if st.session_state.get("train_watching") is not None:
            # The run we watched has just ended: redraw the whole page (history, settings).
            st.session_state["train_watching"] = None
            st.rerun()
        return
    st.session_state["train_watching"] = active.id
    with st.container(border=True):
        header, stop_column = st.columns([5, 1], vertical_alignment="center")
        header.subheader(f"{STATUS_ICONS[active.status]} Run #{active.id} · {active.status}")
        about = ([] if runs_here(active) else [f"running on **{active.host}**, another machine sharing this dataset"]) \
            + ([f"started by {active.created_by}"] if active.created_by else [])
        if about:
            text = " · ".join(about)
            st.caption(text[0].upper() + text[1:])
        if stop_column.button("Stop", icon="⏹️", key="train_stop", disabled=active.status == "stopping",
                              help="Stops after the current batch and keeps the best epoch so far."):
            stop_run(active.id)
            st.rerun(scope="fragment")
        with storage.begin() as session:
            rows = runs.epoch_rows(session, active.id)
        progress = run_progress(active, rows)
        st.progress(progress.fraction, text=progress_text(progress))
        best = (f"best validation IoU so far **{active.best_val_iou:.3f}** (epoch {active.best_epoch})"
                if active.best_val_iou is not None else "")
        if active.starting_val_iou is not None:
            st.caption(f"The starting model scored **{active.starting_val_iou:.3f}** on the validation photos "
                       f"before training{'; ' + best if best else ''}.")
        elif best:
            st.caption(best[0].upper() + best[1:] + ".")
        epoch_charts(active.id, active.starting_val_iou)


with storage.begin() as session:
    active_now = runs.active_run(session)

if active_now is None:
    with st.expander("New training run", expanded=True, icon="🚀"):
        if numbers.labelled < MINIMUM_LABELLED:
            st.info(f"Training needs at least {MINIMUM_LABELLED} labelled photos; you have {numbers.labelled}. "
                    "Label photos on the Annotate page or import a labelled folder on the Photos page.")
        # The common case on one screen: what to start from and for how long. Everything else keeps
        # its default under "Advanced settings".
        start_column, minutes_column = st.columns(2)
        # Options are "starter", "pretrained", a version id as text, or "scratch" (random weights).
        start_options = ((["starter"] if starter_model_available() else [])
                         + (["pretrained"] if pretrained_model_available() else [])
                         + [str(v.id) for v in versions] + ["scratch"])
        version_labels = {str(v.id): version_label(v) for v in versions}
        start_choice = start_column.selectbox(
            "Start from", start_options,
            format_func=lambda option: START_LABELS.get(option) or f"model {version_labels[option]}",
            key="train_start_from",
            help="Fine-tuning a model that already knows cats learns faster than starting from scratch; "
                 "it keeps that model's network and image size.")
        start_from = None if start_choice == "scratch" else start_choice
        try:
            learnt = learnt_by(start_from)
        except ValueError as error:  # a damaged or vanished model folder: say so, and split as if it learnt none
            st.warning(str(error))
            learnt = frozenset()
        with storage.begin() as session:
            split = planned_split(session, DEFAULT_TRAINING, learnt)
        st.caption(split_words(numbers.labelled, split))
        minutes = minutes_column.slider("Time budget (minutes)", 1, 120,
                                        int((DEFAULT_TRAINING.max_seconds or 600) // 60), key="train_minutes",
                                        help="Training stops when the time is up and keeps its best epoch.")
        with st.expander("Advanced settings", icon="⚙️"):
            model_column, training_column = st.columns(2)
            with model_column:
                if start_from is None:
                    architecture = st.selectbox("Network", list(ARCHITECTURE_LABELS),
                                                format_func=ARCHITECTURE_LABELS.get, key="train_architecture")
                    pretrained = False
                    if architecture == "mobilenet_unet":
                        pretrained = st.checkbox(
                            "Start the encoder from ImageNet weights", value=False, key="train_pretrained",
                            help="Downloads about 9 MB from the internet once. Without internet the run stops "
                                 "with a clear message.")
                    image_size = st.select_slider("Image size (pixels)", options=IMAGE_SIZES,
                                                  value=DEFAULT_MODEL.image_size, key="train_image_size",
                                                  help="Larger sees finer edges but trains slower.")
                else:
                    # A fine-tune keeps the starting model's network and size, so show those (read-only),
                    # not the from-scratch defaults. One key per start: the shown value follows the choice.
                    architecture, image_size = starting_network(start_from)
                    pretrained = False
                    st.selectbox("Network", [architecture], format_func=lambda name: NETWORK_LABELS.get(name, name),
                                 key=f"train_architecture_of_{start_from}", disabled=True,
                                 help="Fine-tuning keeps the starting model's network.")
                    st.select_slider("Image size (pixels)", options=sorted({*IMAGE_SIZES, image_size}),
                                     value=image_size, key=f"train_image_size_of_{start_from}", disabled=True,
                                     help="Fine-tuning keeps the starting model's image size; it learns from "
                                          "photos at three quarters of it, which is quicker.")
                epochs = st.number_input("Epochs (at most)", 1, 1000, DEFAULT_TRAINING.epochs, key="train_epochs")
                batch_size = st.select_slider("Batch size", options=[2, 4, 8, 16, 32],
                                              value=DEFAULT_TRAINING.batch_size, key="train_batch_size")
                patience = st.number_input("Stop early after this many epochs without improvement (0 = never)",
                                           0, 1000, DEFAULT_TRAINING.early_stopping_patience, key="train_patience")
            with training_column:
                # A model that already knows cats has its own recipe, under its own keys, so switching
                # the start switches the suggestions.
                recipe, recipe_key = (DEFAULT_TRAINING, "") if start_from is None else (FINE_TUNE_TRAINING, "_fine_tune")
                learning_rate = st.select_slider(
                    "Learning rate", options=[1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2],
                    value=recipe.learning_rate, key=f"train_learning_rate{recipe_key}",
                    format_func=lambda rate: f"{rate:.5f}".rstrip("0"),
                    help="How big each training step is. Larger rates learn faster and can leave a model worse "
                         "than where it started.")
                average = st.toggle(
                    "Keep a running average of the weights", value=recipe.average_span > 0,
                    key=f"train_average{recipe_key}",
                    help="Scores and keeps the average of about the last third of the run's steps instead of the "
                         "last step: smoother, and a fine-tune stays close to what its starting model knew.")
                augment = st.toggle("Augment photos (flips, zoom, rotation, colour)", value=DEFAULT_TRAINING.augment,
                                    key="train_augment")
                close_up = st.slider(
                    "Close-up crops (share of augmented photos)", 0.0, 0.8, recipe.close_up_probability,
                    0.1, format="%.1f", key=f"train_close_up{recipe_key}", disabled=not augment,
                    help="Zooms in on the cat in this share of the augmented photos, so that the model also learns "
                         "cats that fill the frame. The starter's last stage used 0.3 (see its model card).")
                freeze_batch_norm = st.toggle(
                    "Keep the starting model's batch-norm layers fixed", value=DEFAULT_TRAINING.freeze_batch_norm,
                    key="train_freeze_batch_norm", disabled=start_from is None,
                    help="Best with a few dozen photos, whose small batches give noisy statistics; "
                         "turn it off when you fine-tune on hundreds of photos.")
        # When fine-tuning, the run takes the starting model's own network and size.
        model_config = ModelConfig(architecture=architecture, image_size=image_size, pretrained=pretrained)
        train_config = TrainConfig(
            epochs=int(epochs), batch_size=batch_size, learning_rate=learning_rate, augment=augment,
            average_span=FINE_TUNE_TRAINING.average_span if average else 0.0,
            close_up_probability=float(close_up) if augment else 0.0, freeze_batch_norm=freeze_batch_norm,
            frozen_encoder_stages=FINE_TUNE_TRAINING.frozen_encoder_stages if start_from else 0,
            fine_tune_scale=FINE_TUNE_TRAINING.fine_tune_scale if start_from else 1.0,
            early_stopping_patience=int(patience), max_seconds=float(minutes * 60),
            seed=DEFAULT_TRAINING.seed, validation_fraction=DEFAULT_TRAINING.validation_fraction,
        )
        if split.teach:
            times = recorded_step_times(run_network_key(model_config, train_config, start_from is not None))
            estimate = (budget_estimate(times, split.teach, split.held_out, minutes * 60, int(epochs), batch_size)
                        if times is not None else None)
            st.caption(budget_words(estimate, minutes, split.teach), help=(
                "From the step times the last run of this network at this size measured on this machine. "
                "The run shapes its learning-rate schedule to the steps its minutes buy."))
        if st.button("Start training", type="primary", icon="🚀", key="train_start",
                     disabled=numbers.labelled < MINIMUM_LABELLED):
            try:
                run_id = start_run(model_config, train_config, start_from, created_by=current_author())
                st.session_state["train_watching"] = run_id
                st.rerun()
            except ValueError as error:
                st.error(str(error))

live_run()

st.subheader("Runs")


# While a run is going, the table refreshes with the live panel, so its row keeps up.
@st.fragment(run_every=2 if active_now is not None else None)
def runs_table() -> None:
    """Every run so far, and a word on the latest if it ended below its starting model."""
    try:
        with storage.begin() as session:
            history = runs.list_runs(session)
            version_by_run = {v.run_id: v for v in runs.list_model_versions(session)}
    except storage.DatabaseUnavailable:
        return  # the live panel above says so; the table comes back with the database
    if not history:
        st.caption("No runs yet.")
        return
    table = pd.DataFrame([
        {
            "run": run.id,
            "status": f"{STATUS_ICONS.get(run.status, '')} {run.status}",
            "network": run.model_config.get("architecture"),
            "size": run.model_config.get("image_size"),
            "started from": start_label(run.initial_model),
            "epochs": run.epoch,
            "start val IoU": run.starting_val_iou,
            "best val IoU": run.best_val_iou,
            "minutes": round(run_minutes(run), 1),
            "model": f"#{version_by_run[run.id].id}" if run.id in version_by_run else "",
            "started": run.created_at.strftime("%Y-%m-%d %H:%M"),
            "by": run.created_by or "",
            "machine": run.host or "",
        }
        for run in history
    ])
    st.dataframe(table, hide_index=True, width="stretch",
                 column_config={
                     "best val IoU": st.column_config.ProgressColumn(min_value=0, max_value=1, format="%.3f"),
                     "start val IoU": st.column_config.NumberColumn(
                         format="%.3f", help="The starting model on the run's validation photos, before training"),
                 })
    latest = history[0]
    if latest.status in ("finished", "stopped") and latest.ended_below_start:
        advice = ("The Try page keeps preselecting the starter model until a version beats it."
                  if latest.initial_model == "starter" else
                  "The starting model may serve you better on the Try page (unless it was trained on those same "
                  "photos).")
        st.warning(f"Run #{latest.id} ended below the model it started from: best {latest.best_val_iou:.3f} against "
                   f"{latest.starting_val_iou:.3f} on its validation photos. Its version is kept. {advice} More "
                   "labelled photos, a longer time budget or a lower learning rate may help.", icon="⚠️")
    for run in history:
        if run.status == "failed" and run.error:
            with st.expander(f"❌ Why run #{run.id} failed"):
                st.code(run.error, language=None)


runs_table()
with storage.begin() as session:
    history = runs.list_runs(session)
finished = [run.id for run in history if not run.is_active]
if finished:
    compare = st.multiselect("Compare runs (validation IoU per epoch)", finished, default=finished[:3],
                             key="train_compare")
    if compare:
        with storage.begin() as session:
            curves = {f"run {run_id}": {row["epoch"]: row["val_iou"] for row in runs.epoch_rows(session, run_id)}
                      for run_id in compare}
        st.line_chart(pd.DataFrame(curves), height=240)
    inspect = st.selectbox("Look at a run", finished, key="train_inspect", index=None,
                           placeholder="Choose a run to see its charts")
    if inspect is not None:
        epoch_charts(inspect, next(run.starting_val_iou for run in history if run.id == inspect))
