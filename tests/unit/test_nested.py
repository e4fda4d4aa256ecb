"""The one walk over nested mappings: dotted keys, what counts as a leaf, and lists walked only when asked."""

from __future__ import annotations

import math

from tempered.nested import leaves

CONFIG = {"models": {"cnn": {"optimizer": {"lr": 0.1}, "epochs": 2}}, "seeds": [0, 1], "extra": {},
          "rows": [{"x": 1.0}, (2, {})]}


def test_leaves_are_dotted_keys_in_order_with_lists_and_empty_mappings_as_leaves():
    assert leaves(CONFIG) == {"models.cnn.optimizer.lr": 0.1, "models.cnn.epochs": 2, "seeds": [0, 1],
                              "extra": {}, "rows": [{"x": 1.0}, (2, {})]}
    assert list(leaves(CONFIG)) == ["models.cnn.optimizer.lr", "models.cnn.epochs", "seeds", "extra", "rows"]


def test_lists_are_walked_by_index_only_when_asked():
    assert leaves(CONFIG, into_lists=True) == {"models.cnn.optimizer.lr": 0.1, "models.cnn.epochs": 2, "seeds.0": 0,
                                               "seeds.1": 1, "extra": {}, "rows.0.x": 1.0, "rows.1.0": 2,
                                               "rows.1.1": {}}


def test_a_prefix_names_the_subtree_and_a_bare_value_is_its_own_leaf():
    assert leaves({"batch_size": 64, "eps": {}}, "attacks.jsma") == {"attacks.jsma.batch_size": 64,
                                                                    "attacks.jsma.eps": {}}
    assert leaves(3, "limit") == {"limit": 3}
    assert leaves(math.inf) == {"": math.inf}
    assert leaves([], "x", into_lists=True) == {"x": []}
    assert leaves({}) == {} and leaves([], into_lists=True) == {}
