"""TensorFlow, ONNX Runtime and OpenVINO side by side on one model: start-up and seconds per view.

Each runtime runs in a fresh process of its own, so "start" is what a user waits for: the
import and the model load (TensorFlow: the Keras file; the others: the model's ONNX file
for that size). Then one view at each size, batches of 1, 2 and 4 photos, float32
arithmetic, threads = the cores this process may use; the median of --runs timed calls
after one untimed call. Prints one JSON object; measure on a quiet machine.

    .venv/bin/python bench/runtime_speed.py --model starter
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import _common  # noqa: F401  (puts the repository on sys.path)

RUNTIMES = ("tensorflow", "onnxruntime", "openvino")
BATCHES = (1, 2, 4)


def load(runtime: str, directory, sizes):
    """{size: callable(batch) -> probabilities} for one runtime; imports happen here, inside the timing."""
    from catseg.model.versions import read_card
    from catseg.predict.runtime import runtime_threads

    card = read_card(directory)
    files = card["inference"]["files"]
    if runtime == "tensorflow":
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        from catseg.model.networks import at_input_size, in_precision
        from catseg.model.versions import load_model_version

        model, _, _ = load_model_version(directory)
        model = in_precision(model, "float32")
        return {size: (model if size == model.input_shape[1] else at_input_size(model, size)).predict_on_batch
                for size in sizes}
    if runtime == "onnxruntime":
        from catseg.predict.runtime import RuntimeNetwork

        return {size: RuntimeNetwork(directory / files[str(size)]["name"], size).predict_on_batch for size in sizes}
    import openvino

    core = openvino.Core()
    networks = {}
    for size in sizes:
        compiled = core.compile_model(str(directory / files[str(size)]["name"]), "CPU", {
            "INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": runtime_threads(),
            "PERFORMANCE_HINT": "LATENCY"})
        networks[size] = lambda batch, compiled=compiled: compiled(batch)[0]
    return networks


def measure(runtime: str, directory, sizes, runs: int) -> dict:
    import numpy as np

    started = time.perf_counter()
    networks = load(runtime, directory, sizes)
    result = {"start_seconds": round(time.perf_counter() - started, 3), "seconds_per_view": {}}
    generator = np.random.default_rng(0)
    for size in sizes:
        for batch_size in BATCHES:
            batch = generator.random((batch_size, size, size, 3), dtype=np.float32)
            networks[size](batch)  # the first call of a shape prepares it (TensorFlow traces it)
            seconds = []
            for _ in range(runs):
                begun = time.perf_counter()
                networks[size](batch)
                seconds.append(time.perf_counter() - begun)
            result["seconds_per_view"][f"{size}px_batch{batch_size}"] = round(statistics.median(seconds) / batch_size, 4)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="starter", help="starter, pretrained, best, a version id or a model folder")
    parser.add_argument("--sizes", default="256,320", help="view sizes, each exported in the model's card")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", choices=RUNTIMES, help=argparse.SUPPRESS)  # one runtime, in a child process
    arguments = parser.parse_args()

    from catseg.model.registry import resolve_model
    from catseg.predict.runtime import runtime_threads

    directory = resolve_model(arguments.model)
    sizes = [int(size) for size in arguments.sizes.split(",")]
    if arguments.only:
        print(json.dumps(measure(arguments.only, directory, sizes, arguments.runs)))
        return
    results = {"model": str(directory), "threads": runtime_threads(), "runs": arguments.runs, "runtimes": {}}
    for runtime in RUNTIMES:
        child = subprocess.run([sys.executable, __file__, "--model", str(directory), "--sizes", arguments.sizes,
                                "--runs", str(arguments.runs), "--only", runtime],
                               capture_output=True, text=True, check=False)
        if child.returncode != 0:
            results["runtimes"][runtime] = {"error": child.stderr.strip().splitlines()[-1:]}
            continue
        results["runtimes"][runtime] = json.loads(child.stdout.strip().splitlines()[-1])
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
