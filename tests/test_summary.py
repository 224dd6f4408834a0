def test_stages_phrase_lists_the_slowest_first_and_skips_instant_ones():
    from item2vec.summary import stages_phrase

    phrase = stages_phrase({"split": 1.25, "gate": 0.001, "train": 40.04, "ingest": 3.0})
    assert phrase == "train 40.0s, ingest 3.0s, split 1.2s"
    assert stages_phrase({"a": 1.0, "b": 2.0, "c": 3.0}, shown=2) == "c 3.0s, b 2.0s"


RECORD = {
    "k": [10],
    "model": {"hr@10": 0.12},
    "model_with_fallback": {"hr@10": 0.13, "fallback_share": 0.25},
    "baselines": {"popularity": {"hr@10": 0.04}, "item_knn": {"hr@10": 0.09}},
    "baseline_settings": {
        "item_knn": {
            "query_items": 2,
            "similarity": "cosine",
            "chosen_on": "validation hr@10, 610 cases",
            "validation": {"1": 0.08, "2": 0.1},
        }
    },
    "neighbors": {
        "scoring": "in-out",
        "category": "first value of genres",
        "model": {"hr@10": 0.09, "category@10": 0.4},
        "item_knn": {"hr@10": 0.06, "category@10": 0.41},
    },
}


def test_phrases_say_how_baselines_fallback_and_neighbours_were_measured():
    from item2vec.summary import baselines_phrase, fallback_phrase, neighbors_phrase

    assert "query = last 2 items, cosine" in baselines_phrase(RECORD)
    assert "1 0.080, 2 0.100" in baselines_phrase(RECORD)
    assert "kept from" not in baselines_phrase(RECORD)
    # A warm night's kept settings say which version chose them.
    settings = RECORD["baseline_settings"]["item_knn"]
    kept = {**RECORD, "baseline_settings": {"item_knn": {**settings, "chosen_in": "v1"}}}
    assert "kept from v1)" in baselines_phrase(kept)
    assert "25.0% of test users" in fallback_phrase(RECORD)
    assert "scored in-out" in neighbors_phrase(RECORD) and "genres" in neighbors_phrase(RECORD)
    # Older manifests without these parts give no phrase, never an error.
    old = {"model": {"hr@10": 0.1}, "baselines": {}}
    assert baselines_phrase(old) is fallback_phrase(old) is neighbors_phrase(old) is None


def test_metrics_tables_show_the_fallback_row_and_the_neighbour_tables():
    from item2vec.metric_table import metrics_markdown, metrics_text, neighbors_record

    methods = [line.split()[0] for line in metrics_text(RECORD).splitlines()[2:]]
    assert methods == ["item2vec", "with", "popularity", "item-kNN"]
    table = metrics_markdown(neighbors_record(RECORD))
    assert "| item2vec | 0.0900 | 0.4000 |" in table and "| item-kNN | 0.0600 | 0.4100 |" in table
    assert neighbors_record({"model": {}}) == {}


def test_the_gate_shows_item_knn_at_its_validated_best_but_judges_popularity():
    from item2vec.config import build_config
    from item2vec.gate import quality_gate

    config = build_config({"ingest": {"paths": ["e.csv"]}})
    gate = quality_gate(RECORD, config)
    assert gate["passed"]
    assert "item-kNN 0.0900 at its validated best: 2 query items" in gate["reason"]
