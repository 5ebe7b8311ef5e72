"""``ops.ctc_loss``/``ctc_decode`` and ``losses.CTC``/``ctc`` against values computed by
Keras 3.15.1 (tests/fixtures/ops/make_fixtures.py), a brute-force sum over alignments, and
float64 central differences."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

import lamina
from lamina import losses, ops
from lamina.testing import check_gradients

FIX = np.load(Path(__file__).parents[2] / "fixtures/ops/ops_fixtures.npz", allow_pickle=False)


def test_ctc_loss_matches_keras():
    got = ops.ctc_loss(FIX["ctc_target"], FIX["ctc_logits"], FIX["ctc_target_length"],
                       FIX["ctc_output_length"])
    assert got.dtype == "float32" and got.shape == (3,)
    np.testing.assert_allclose(got.data, FIX["ctc_loss"], rtol=1e-5)
    got = ops.nn.ctc_loss(FIX["ctc_target_m4"], FIX["ctc_logits"], np.array([4, 3, 2]),
                          FIX["ctc_output_length"], mask_index=4)
    np.testing.assert_allclose(got.data, FIX["ctc_loss_m4"], rtol=1e-5)


def _collapse(path, blank):
    out = [k for k, _ in itertools.groupby(path)]
    return tuple(k for k in out if k != blank)


def test_ctc_loss_is_minus_log_of_the_sum_over_alignments():
    rng = np.random.default_rng(3)
    logits = rng.standard_normal((1, 5, 3))
    logp = logits[0] - np.log(np.sum(np.exp(logits[0]), -1, keepdims=True))
    target = (1, 1)  # a repeat needs a blank between its labels
    total = sum(np.exp(sum(logp[t, c] for t, c in enumerate(path)))
                for path in itertools.product(range(3), repeat=5)
                if _collapse(path, 0) == target)
    got = ops.ctc_loss(np.array([[1, 1, 2]]), logits, np.array([2]), np.array([5]))
    np.testing.assert_allclose(got.data, [-np.log(total)], rtol=1e-6)


def test_ctc_loss_gradient_matches_central_differences():
    rng = np.random.default_rng(4)
    logits = rng.standard_normal((2, 6, 4))
    target, lengths = np.array([[1, 2, 2], [3, 1, 0]]), np.array([3, 2])

    def loss(x):
        return ops.ctc_loss(target, x, lengths, np.array([6, 5]))

    assert check_gradients(loss, [logits]) <= 1e-6


@pytest.mark.parametrize("merge", [True, False])
@pytest.mark.parametrize("mask", [0, 5])
def test_greedy_decode_matches_keras(merge, mask):
    paths, scores = ops.ctc_decode(FIX["dec_inputs"], FIX["dec_lengths"],
                                   merge_repeated=merge, mask_index=mask)
    key = f"dec_greedy_{int(merge)}_{mask}"
    assert paths.dtype == "int32" and paths.shape == (1, 3, 10)
    np.testing.assert_array_equal(paths.data, FIX[key + "_paths"])
    np.testing.assert_allclose(scores.data, FIX[key + "_scores"], rtol=1e-6)


@pytest.mark.parametrize("beam,top,mask", [(5, 1, 0), (8, 3, 0), (4, 2, 5), (20, 4, 0)])
def test_beam_search_decode_matches_keras(beam, top, mask):
    paths, scores = ops.nn.ctc_decode(FIX["dec_inputs"], FIX["dec_lengths"],
                                      strategy="beam_search", beam_width=beam, top_paths=top,
                                      mask_index=mask)
    key = f"dec_beam_{beam}_{top}_{mask}"
    np.testing.assert_array_equal(paths.data, FIX[key + "_paths"])
    np.testing.assert_allclose(scores.data, FIX[key + "_scores"], rtol=1e-5)


def test_decode_errors_name_the_argument():
    with pytest.raises(ValueError, match="Invalid strategy beam"):
        ops.ctc_decode(FIX["dec_inputs"], FIX["dec_lengths"], strategy="beam")
    with pytest.raises(ValueError, match="target.shape"):
        ops.ctc_loss(np.array([1, 2]), FIX["ctc_logits"], [2], [9])


def test_ctc_losses_match_keras():
    y_true, y_pred = FIX["ctc_y_true"], FIX["ctc_logits"]
    np.testing.assert_allclose(losses.ctc(y_true, y_pred).data, FIX["ctc_losses_fn"],
                               rtol=1e-5)
    np.testing.assert_allclose(float(losses.CTC()(y_true, y_pred)), FIX["ctc_losses_class"],
                               rtol=1e-5)
    loss = losses.CTC(reduction="sum")
    np.testing.assert_allclose(float(loss(y_true, y_pred)), FIX["ctc_losses_class_sum"],
                               rtol=1e-5)
    assert loss.get_config() == {"name": "ctc", "reduction": "sum"}  # as Keras 3.15.1
    again = losses.deserialize(losses.serialize(loss))
    assert isinstance(again, losses.CTC) and again.get_config() == loss.get_config()
    with pytest.raises(ValueError, match="y_pred.shape"):
        losses.ctc(y_true, y_pred[0])


def test_ctc_loss_trains_a_model():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 8, 4)).astype("float32")
    y = rng.integers(1, 4, size=(16, 3)).astype("int32")
    model = lamina.Sequential([lamina.Input((8, 4)), lamina.layers.Dense(5)])
    model.compile(optimizer=lamina.optimizers.Adam(0.05), loss=losses.CTC())
    history = model.fit(x, y, epochs=8, batch_size=8, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_ctc_ops_inside_functional_models():
    logits = lamina.Input((9, 5))
    target = lamina.Input((4,), dtype="int32")
    lengths = lamina.Input((2,), dtype="int32")
    loss = ops.ctc_loss(target, logits, lengths[:, 0], lengths[:, 1])
    paths, scores = ops.ctc_decode(logits, lengths[:, 1])
    model = lamina.Model([logits, target, lengths], [loss, paths, scores])
    both = np.stack([FIX["ctc_target_length"], FIX["ctc_output_length"]], axis=1)
    got = model.predict([FIX["ctc_logits"], FIX["ctc_target"], both], verbose=0, batch_size=3)
    np.testing.assert_allclose(got[0], FIX["ctc_loss"], rtol=1e-5)
    want_paths, want_scores = ops.ctc_decode(FIX["ctc_logits"], FIX["ctc_output_length"])
    np.testing.assert_array_equal(got[1], want_paths.data)
    np.testing.assert_allclose(got[2], want_scores.data, rtol=1e-6)


def test_ctc_loss_edge_cases_match_keras():
    # Targets that cannot fit get Keras's finite penalty (about 1e5), not infinity.
    got = ops.ctc_loss(FIX["ctc_edge_target"], FIX["ctc_edge_logits"], [4, 2, 0, 2],
                       [3, 2, 3, 3])
    np.testing.assert_allclose(got.data, FIX["ctc_edge_loss"], rtol=1e-5)


def test_beam_search_on_longer_sequences_matches_keras():
    paths, scores = ops.ctc_decode(FIX["dec_long_inputs"], np.array([30, 21]),
                                   strategy="beam_search", beam_width=16, top_paths=5)
    np.testing.assert_array_equal(paths.data, FIX["dec_long_paths"])
    np.testing.assert_allclose(scores.data, FIX["dec_long_scores"], rtol=1e-5)


def test_decode_mask_index_none_is_the_last_class():
    for strategy in ("greedy", "beam_search"):
        none = ops.ctc_decode(FIX["dec_inputs"], FIX["dec_lengths"], strategy=strategy,
                              beam_width=4, mask_index=None)
        last = ops.ctc_decode(FIX["dec_inputs"], FIX["dec_lengths"], strategy=strategy,
                              beam_width=4, mask_index=5)
        np.testing.assert_array_equal(none[0].data, last[0].data)
        np.testing.assert_array_equal(none[1].data, last[1].data)
