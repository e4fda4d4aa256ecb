import numpy as np
import pytest

from tempered.data.split import HELD_OUT, SOURCE_ARRAY, make_split


@pytest.fixture(scope="module")
def split():
    return make_split(validation_size=5000, seed=0)


def test_sizes(split):
    assert {k: len(v) for k, v in split.items()} == {
        "full": 60_000, "p1": 30_000, "p2": 30_000, "val": 5000, "train": 55_000, "test": 10_000}


def test_p1_p2_are_disjoint_halves_covering_the_training_set(split):
    assert len(np.intersect1d(split["p1"], split["p2"])) == 0
    np.testing.assert_array_equal(np.union1d(split["p1"], split["p2"]), np.arange(60_000))


def test_validation_is_disjoint_from_train_and_together_they_cover_all(split):
    assert len(np.intersect1d(split["val"], split["train"])) == 0
    np.testing.assert_array_equal(np.union1d(split["val"], split["train"]), np.arange(60_000))


def test_every_set_has_unique_in_range_indices(split):
    for name, idx in split.items():
        assert len(np.unique(idx)) == len(idx), name
        limit = 10_000 if SOURCE_ARRAY[name] == "test" else 60_000
        assert idx.min() >= 0 and idx.max() < limit, name


@pytest.mark.parametrize("train_set", sorted(HELD_OUT))
def test_no_model_is_evaluated_on_data_it_trained_on(split, train_set):
    for held in HELD_OUT[train_set]:
        if SOURCE_ARRAY[held] == SOURCE_ARRAY[train_set]:
            assert len(np.intersect1d(split[train_set], split[held])) == 0, (train_set, held)


def test_seeded_and_seed_sensitive():
    a, b, c = make_split(100, 1), make_split(100, 1), make_split(100, 2)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["p1"], c["p1"])


@pytest.mark.parametrize("size", [0, 60_000, 70_000])
def test_validation_size_out_of_range(size):
    with pytest.raises(ValueError, match="validation_size"):
        make_split(size, 0)
