def test_stages_phrase_lists_the_slowest_first_and_skips_instant_ones():
    from item2vec.summary import stages_phrase

    phrase = stages_phrase({"split": 1.25, "gate": 0.001, "train": 40.04, "ingest": 3.0})
    assert phrase == "train 40.0s, ingest 3.0s, split 1.2s"
    assert stages_phrase({"a": 1.0, "b": 2.0, "c": 3.0}, shown=2) == "c 3.0s, b 2.0s"
