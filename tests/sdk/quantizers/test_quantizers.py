"""lamina.quantizers against Keras 3.15.1 (tests/fixtures/quantizers/)."""

import json
import pathlib

import numpy as np
import pytest

import lamina
from lamina import quantizers as Q
from lamina.backend.autodiff import gradients

FIX = json.loads((pathlib.Path(__file__).parents[2] / "fixtures" / "quantizers"
                  / "quantizers.json").read_text())
X = np.asarray(FIX["x"], "float32")


def np_(t):
    return np.asarray(t.data if hasattr(t, "data") else t)


def test_abs_max_quantize_equals_keras():
    for axis in (-1, 0):
        want = FIX[f"abs_max_axis{axis}"]
        for to_numpy, qk, sk in ((False, "q", "s"), (True, "q_np", "s_np")):
            q, s = Q.abs_max_quantize(X, axis=axis, to_numpy=to_numpy)
            assert np_(q).dtype == np.int8 and np_(s).dtype == np.float32
            np.testing.assert_array_equal(np_(q), want[qk])
            np.testing.assert_allclose(np_(s), want[sk], rtol=1e-6)
    q, s = Q.abs_max_quantize(X, axis=1, value_range=(-8, 7), epsilon=1e-3)
    np.testing.assert_array_equal(np_(q), FIX["abs_max_int4"]["q"])
    np.testing.assert_allclose(np_(s), FIX["abs_max_int4"]["s"], rtol=1e-6)
    q, s = Q.AbsMaxQuantizer(axis=0, value_range=(-100, 100))(lamina.ops.convert_to_tensor(X))
    np.testing.assert_array_equal(np_(q), FIX["quantizer"]["q"])
    np.testing.assert_allclose(np_(s), FIX["quantizer"]["s"], rtol=1e-6)


@pytest.mark.parametrize("block", [2, 4, 6])
def test_grouped_with_zero_point_equals_keras(block):
    want = FIX[f"grouped_{block}"]
    q, s, z = Q.abs_max_quantize_grouped_with_zero_point(X, block_size=block)
    assert [str(np_(t).dtype) for t in (q, s, z)] == want["dtypes"]
    np.testing.assert_array_equal(np_(q), want["q"])
    np.testing.assert_allclose(np_(s), want["s"], rtol=1e-6)
    np.testing.assert_array_equal(np_(z), want["z"])
    with pytest.raises(ValueError, match="block_size=0"):
        Q.abs_max_quantize_grouped_with_zero_point(X, block_size=0)


def test_float8_helpers_equal_keras():
    np.testing.assert_array_equal(
        np_(Q.compute_float8_amax_history(X, np.array([1, 2, 3, 4], "float32"))),
        FIX["amax_history"])
    amax = np.array([0.0, 2.0, np.inf, 300.0], "float32")
    scale = np.asarray(FIX["scale"], "float32")
    np.testing.assert_allclose(np_(Q.compute_float8_scale(amax, scale, 448.0)),
                               FIX["float8_scale"], rtol=1e-6)
    np.testing.assert_allclose(np_(Q.compute_float8_scale(amax, scale, 57344.0, margin=2)),
                               FIX["float8_scale_margin"], rtol=1e-6)
    wide = np.asarray(FIX["wide"], "float32")
    for dt in ("float8_e4m3fn", "float8_e5m2"):
        got = np_(Q.quantize_and_dequantize(wide, np.float32(0.7), dt, "float32"))
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, np.asarray(FIX[f"qdq_{dt}"], "float32"))
    with pytest.raises(ValueError, match="quantized_dtype='int8'"):
        Q.quantize_and_dequantize(wide, 1.0, "int8", "float32")


@pytest.mark.parametrize("case", sorted(FIX["fake_quant"]))
def test_fake_quant_and_its_straight_through_gradient_equal_keras(case):
    want = FIX["fake_quant"][case]
    x = lamina.Variable(X)
    mn = lamina.Variable(np.asarray(want["min"], "float32"))
    mx = lamina.Variable(np.asarray(want["max"], "float32"))
    y = Q.fake_quant_with_min_max_vars(x, mn, mx, **want["kwargs"])
    np.testing.assert_allclose(np_(y), want["y"], rtol=1e-6, atol=1e-6)
    loss = lamina.ops.sum(lamina.ops.multiply(y, np.asarray(want["w"], "float32")))
    gx, gmin, gmax = gradients(loss, [x, mn, mx])
    np.testing.assert_allclose(np_(gx), want["gx"], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(np_(gmin), want["gmin"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np_(gmax), want["gmax"], rtol=1e-5, atol=1e-6)


def test_fake_quant_errors():
    with pytest.raises(ValueError, match="num_bits=1"):
        Q.fake_quant_with_min_max_vars(X, -1.0, 1.0, num_bits=1)
    with pytest.raises(ValueError, match="axis=5"):
        Q.fake_quant_with_min_max_vars(X, -1.0, 1.0, axis=5)


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_pack_unpack_int4_equal_keras(axis):
    want = FIX[f"pack_axis{axis}"]
    ints = np.asarray(FIX["ints"], "int8")
    packed, shape, n = Q.pack_int4(ints, axis=axis)
    np.testing.assert_array_equal(np_(packed), want["packed"])
    assert (list(shape), n) == (want["shape"], want["n"])
    unpacked = np_(Q.unpack_int4(packed, n, axis=axis))
    np.testing.assert_array_equal(unpacked, want["unpacked"])
    np.testing.assert_array_equal(unpacked, ints)


def test_pack_unpack_uint8_and_errors():
    uints = np.asarray(FIX["uints"], "uint8")
    packed, shape, n = Q.pack_int4(uints, axis=1, dtype="uint8")
    np.testing.assert_array_equal(np_(packed), FIX["pack_uint8"]["packed"])
    np.testing.assert_array_equal(np_(Q.unpack_int4(packed, n, axis=1, dtype="uint8")), uints)
    with pytest.raises(ValueError, match="dtype='int4'"):
        Q.pack_int4(uints, dtype="int4")
    with pytest.raises(TypeError, match="Expected int8 tensor"):
        Q.pack_int4(uints)
    with pytest.raises(TypeError, match="int8 or uint8"):
        Q.unpack_int4(np.zeros(3, "int32"), 6)


def test_configs_serialize_as_keras():
    cases = {
        "int8": Q.Int8QuantizationConfig(),
        "int4": Q.Int4QuantizationConfig(block_size=64),
        "int4_custom": Q.Int4QuantizationConfig(
            weight_quantizer=Q.AbsMaxQuantizer(value_range=(-8, 7)), block_size=None),
        "float8": Q.Float8QuantizationConfig(),
        "quantizer": Q.AbsMaxQuantizer(axis=(0, 1), epsilon=1e-4),
    }
    for name, obj in cases.items():
        assert json.loads(json.dumps(Q.serialize(obj))) == FIX["configs"][name], name
        again = Q.deserialize(FIX["configs"][name])
        assert type(again) is type(obj)
        if name in FIX["modes"]:
            assert again.mode == FIX["modes"][name]
    assert Q.deserialize(FIX["configs"]["quantizer"]).axis == (0, 1)
    assert isinstance(Q.get("abs_max_quantizer"), Q.AbsMaxQuantizer)
    assert Q.get("AbsMaxQuantizer", value_range=(-8, 7)).value_range == (-8, 7)
    assert Q.get(None) is None
    with pytest.raises(ValueError, match="nope"):
        Q.get("nope")
    with pytest.raises(NotImplementedError):
        _ = Q.QuantizationConfig().mode
    with pytest.raises(NotImplementedError):
        Q.Quantizer().get_config()


def test_config_validation():
    with pytest.raises(ValueError, match="block_size=0"):
        Q.Int4QuantizationConfig(block_size=0)
    with pytest.raises(ValueError, match="sub-channel"):
        Q.Int4QuantizationConfig(weight_quantizer=Q.AbsMaxQuantizer(value_range=(-8, 7)))
    with pytest.raises(ValueError, match=r"value_range=\(-127, 127\)"):
        Q.Int4QuantizationConfig(weight_quantizer=Q.AbsMaxQuantizer(), block_size=-1)
    with pytest.raises(ValueError, match="output_dtype=int16"):
        Q.Int8QuantizationConfig(weight_quantizer=Q.Quantizer(output_dtype="int16"))
    with pytest.raises(ValueError, match=r"value_range=\(-200, 127\)"):
        Q.AbsMaxQuantizer(value_range=(-200, 127))
    assert Q.Int8QuantizationConfig().activation_quantizer.value_range == (-127, 127)
    assert Q.Int4QuantizationConfig().activation_quantizer is None


def test_fake_quant_in_a_functional_model():
    x = lamina.Input((5,))
    model = lamina.Model(x, Q.fake_quant_with_min_max_vars(x, -2.0, 3.5))
    want = FIX["fake_quant"]["scalar8"]["y"]
    np.testing.assert_allclose(model.predict(X, verbose=0), want, rtol=1e-6, atol=1e-6)
