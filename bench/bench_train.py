"""Training throughput: the project's train step vs bare gensim, same corpus and parameters.

The corpus is the bundled MovieLens sample's training side (leave-last-out).
Also times gensim's corpus_file mode against the in-memory iterable.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gensim.models import Word2Vec  # noqa: E402

from item2vec.config import build_config  # noqa: E402
from item2vec.ingest import read_events  # noqa: E402
from item2vec.presets import bundled_sample  # noqa: E402
from item2vec.sequences import build_sequences  # noqa: E402
from item2vec.split import leave_last_out  # noqa: E402
from item2vec.train import OWN_FIELDS, train_word2vec  # noqa: E402

REPEATS = int(os.environ.get("BENCH_REPEATS", 3))


def timed(function) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def main() -> None:
    config = build_config(bundled_sample())
    corpus = leave_last_out(build_sequences(read_events(config.ingest).table)).train
    words = sum(map(len, corpus)) * config.train.epochs
    params = config.train.model_dump(exclude=OWN_FIELDS)
    file_config = config.train.model_copy(update={"corpus_file": True})
    print(f"train: {words:,} words ({config.train.epochs} epochs), workers={params['workers']}")
    timings: dict[str, list[float]] = {"ours": [], "bare": [], "ours_corpus_file": []}
    for repeat in range(REPEATS):
        timings["ours"].append(timed(lambda: train_word2vec(corpus, config.train)))
        timings["bare"].append(timed(lambda: Word2Vec(sentences=corpus, **params)))
        timings["ours_corpus_file"].append(timed(lambda: train_word2vec(corpus, file_config)))
        done = ", ".join(f"{name} {values[-1]:.2f}s" for name, values in timings.items())
        print(f"  repeat {repeat + 1}: {done}", flush=True)
    median = {name: statistics.median(values) for name, values in timings.items()}
    result = {
        "bench": "train",
        "words": words,
        "workers": params["workers"],
        "ours_words_per_s": round(words / median["ours"]),
        "bare_words_per_s": round(words / median["bare"]),
        "corpus_file_words_per_s": round(words / median["ours_corpus_file"]),
        "vs_gensim_throughput": round(median["bare"] / median["ours"], 3),
        "corpus_file_vs_iterable": round(median["ours"] / median["ours_corpus_file"], 3),
        "repeats": REPEATS,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
