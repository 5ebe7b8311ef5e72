"""One-pass compiled updates for the elementwise optimizers (Adam/AdamW, SGD, RMSprop,
Adagrad, Adamax, Lion) and for the decoupled weight decay.

Adam's numpy ``update_step`` is a dozen whole-array passes (each reads and writes a
scratch buffer); a kernel compiled by :mod:`lamina.backend.compiled` reads every
element of the gradient, the slots and the parameter once and writes them once.

Each kernel gives exactly the bits of its optimizer's numpy path, which stays the
reference: every constant is converted to the arrays' dtype before the call, as numpy
does for a Python float in an operation with a float32 array (NEP 50 "weak" scalars),
and each element goes through the same IEEE operations in the same order. numba
compiles without ``fastmath``, so nothing is contracted into an FMA or reassociated,
and its ``sqrt`` and division are correctly rounded like numpy's. Whatever a kernel
cannot reproduce (another dtype, mixed dtypes, a numpy scalar that would promote the
operation, non-contiguous arrays) makes its wrapper return False, and the optimizer
runs its numpy path.

Each wrapper returns True when it did the update; ``update_step`` reads::

    if kernels.adam(gradient, variable, m, v, v_hat, 1 - b1, 1 - b2, alpha, eps):
        return
"""

from __future__ import annotations

import numpy as np

from lamina.backend import compiled

_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _weak(value, dtype):
    """``value`` as numpy uses it in an operation with a ``dtype`` array, or None when
    that operation would not run in ``dtype`` (or numpy would reject it)."""
    if type(value) in (float, int):
        return dtype.type(value)
    if isinstance(value, np.generic) and np.result_type(value, dtype) == dtype:
        return dtype.type(value)
    return None


def _arrays(gradient, variable, *slots):
    """Flat views of the arrays when a kernel can update them, else None: same shape
    and dtype (float32/float64), C-contiguous, the outputs writable."""
    if not isinstance(variable, np.ndarray) or variable.dtype not in _DTYPES:
        return None
    dtype, shape = variable.dtype, variable.shape
    out = []
    for k, array in enumerate((gradient, variable, *slots)):
        if not isinstance(array, np.ndarray) or array.dtype != dtype or array.shape != shape:
            return None
        flags = array.flags
        if not flags.c_contiguous or (k > 0 and not flags.writeable):
            return None
        out.append(array if array.ndim == 1 else array.reshape(-1))
    return out


def _constants(dtype, *values):
    out = [_weak(value, dtype) for value in values]
    return None if any(c is None for c in out) else out


def adam(gradient, variable, m, v, v_hat, one_minus_b1, one_minus_b2, alpha,
         epsilon) -> bool:
    """Adam's (or AMSGrad's, when ``v_hat`` is an array) update in one pass, in place.

    Returns:
        True when done; False (nothing written) when the numpy path must run.
    """
    if not compiled.pays(variable.size):
        return False
    arrays = _arrays(gradient, variable, m, v, *(() if v_hat is None else (v_hat,)))
    if arrays is None:
        return False
    consts = _constants(variable.dtype, one_minus_b1, one_minus_b2, alpha, epsilon)
    if consts is None:
        return False
    if v_hat is None:
        _adam(*arrays, *consts)
    else:
        _amsgrad(*arrays, *consts)
    return True


def sgd(gradient, variable, m, learning_rate, momentum, nesterov) -> bool:
    """SGD's update (plain when ``m`` is None, else with (Nesterov) momentum) in one pass.

    Returns:
        True when done; False (nothing written) when the numpy path must run.
    """
    if not compiled.pays(variable.size):
        return False
    arrays = _arrays(gradient, variable, *(() if m is None else (m,)))
    if arrays is None:
        return False
    consts = _constants(variable.dtype, learning_rate, momentum)
    if consts is None:
        return False
    if m is None:
        _sgd(*arrays, consts[0])
    elif nesterov:
        _sgd_nesterov(*arrays, *consts)
    else:
        _sgd_momentum(*arrays, *consts)
    return True


def rmsprop(gradient, variable, v, average, mom, rho, one_minus_rho, epsilon,
            learning_rate, momentum) -> bool:
    """RMSprop's update in one pass; ``average`` (centered) and ``mom`` (momentum > 0)
    are arrays or None.

    Returns:
        True when done; False (nothing written) when the numpy path must run.
    """
    if not compiled.pays(variable.size):
        return False
    centered, with_momentum = average is not None, mom is not None
    arrays = _arrays(gradient, variable, v, *(() if average is None else (average,)),
                     *(() if mom is None else (mom,)))
    if arrays is None:
        return False
    consts = _constants(variable.dtype, rho, one_minus_rho, epsilon, learning_rate,
                        momentum if with_momentum else 0.0)
    if consts is None:
        return False
    g, w, v = arrays[:3]
    empty = w[:0]
    a = arrays[3] if centered else empty
    mo = arrays[-1] if with_momentum else empty
    _rmsprop(g, w, v, a, mo, *consts, centered, with_momentum)
    return True


def _one_pass(kernel, gradient, variable, slots, constants) -> bool:
    """Run ``kernel(gradient, variable, *slots, *constants)`` when it can reproduce the
    numpy path (see :func:`_arrays`, :func:`_constants`); True when it ran."""
    if not compiled.pays(variable.size):
        return False
    arrays = _arrays(gradient, variable, *slots)
    consts = None if arrays is None else _constants(variable.dtype, *constants)
    if consts is None:
        return False
    kernel(*arrays, *consts)
    return True


def adagrad(gradient, variable, accumulator, learning_rate, epsilon) -> bool:
    """Adagrad's update in one pass, in place; False (nothing written) when the numpy
    path must run."""
    return _one_pass(_adagrad, gradient, variable, (accumulator,),
                     (learning_rate, epsilon))


def adamax(gradient, variable, m, u, one_minus_b1, beta_2, correction, epsilon,
           learning_rate) -> bool:
    """Adamax's update in one pass, in place (``correction``: ``1 - beta_1 ** t``);
    False (nothing written) when the numpy path must run."""
    return _one_pass(_adamax, gradient, variable, (m, u),
                     (one_minus_b1, beta_2, correction, epsilon, learning_rate))


def lion(gradient, variable, m, beta_1, one_minus_b1, beta_2, one_minus_b2,
         learning_rate) -> bool:
    """Lion's update in one pass, in place; False (nothing written) when the numpy path
    must run."""
    return _one_pass(_lion, gradient, variable, (m,),
                     (beta_1, one_minus_b1, beta_2, one_minus_b2, learning_rate))


def decay(param, rate) -> bool:
    """Decoupled weight decay ``param -= param * rate`` in one pass, in place.

    Returns:
        True when done; False (nothing written) when the numpy path must run.
    """
    if not compiled.pays(param.size):
        return False
    arrays = _arrays(param, param)  # (the "gradient" is the parameter itself)
    consts = None if arrays is None else _constants(param.dtype, rate)
    if consts is None:
        return False
    _decay(arrays[1], *consts)
    return True


# The kernels: one loop each, the numpy path's operations in its order, written out
# per element (comments give the numpy line each expression stands for).

@compiled.kernel
def _adam(g, w, m, v, c1, c2, alpha, eps):
    for i in range(w.size):
        gi = g[i]
        mi = m[i] + (gi - m[i]) * c1          # s = g - m; s *= 1 - b1; m += s
        vi = v[i] + (gi * gi - v[i]) * c2     # s = g**2; s -= v; s *= 1 - b2; v += s
        m[i] = mi
        v[i] = vi
        w[i] = w[i] - mi / (np.sqrt(vi) + eps) * alpha  # s = m / (sqrt(v) + eps) * alpha


@compiled.kernel
def _amsgrad(g, w, m, v, v_hat, c1, c2, alpha, eps):
    for i in range(w.size):
        gi = g[i]
        mi = m[i] + (gi - m[i]) * c1
        vi = v[i] + (gi * gi - v[i]) * c2
        hi = v_hat[i]
        if not (hi >= vi or hi != hi):        # np.maximum(v_hat, v): NaN propagates
            hi = vi
        m[i] = mi
        v[i] = vi
        v_hat[i] = hi
        w[i] = w[i] - mi / (np.sqrt(hi) + eps) * alpha


@compiled.kernel
def _sgd(g, w, lr):
    for i in range(w.size):
        w[i] = w[i] - g[i] * lr


@compiled.kernel
def _sgd_momentum(g, w, m, lr, momentum):
    for i in range(w.size):
        mi = m[i] * momentum - g[i] * lr      # step = g * lr; m *= momentum; m -= step
        m[i] = mi
        w[i] = w[i] + mi


@compiled.kernel
def _sgd_nesterov(g, w, m, lr, momentum):
    for i in range(w.size):
        step = g[i] * lr
        mi = m[i] * momentum - step
        m[i] = mi
        w[i] = w[i] + (mi * momentum - step)  # w += m * momentum - step


@compiled.kernel
def _rmsprop(g, w, v, a, mom, rho, c, eps, lr, momentum, centered, with_momentum):
    for i in range(w.size):
        gi = g[i]
        vi = v[i] * rho + gi * gi * c         # v *= rho; s = g**2; s *= 1 - rho; v += s
        v[i] = vi
        if centered:
            ai = a[i] * rho + gi * c          # a *= rho; s = g * (1 - rho); a += s
            a[i] = ai
            d = vi - ai * ai + eps            # d = v - a**2; d += eps
        else:
            d = vi + eps
        s = gi * lr / np.sqrt(d)              # s = g * lr; s /= sqrt(d)
        if with_momentum:
            mo = mom[i] * momentum + s        # mom *= momentum; mom += s; w -= mom
            mom[i] = mo
            w[i] = w[i] - mo
        else:
            w[i] = w[i] - s


@compiled.kernel
def _decay(w, rate):
    for i in range(w.size):
        w[i] = w[i] - w[i] * rate             # s = w * rate; w -= s


@compiled.kernel
def _adagrad(g, w, acc, lr, eps):
    for i in range(w.size):
        gi = g[i]
        ai = acc[i] + gi * gi                 # s = g**2; acc += s
        acc[i] = ai
        w[i] = w[i] - gi * lr / np.sqrt(ai + eps)  # d = sqrt(acc + eps); s = g * lr / d


@compiled.kernel
def _adamax(g, w, m, u, c1, b2, correction, eps, lr):
    for i in range(w.size):
        gi = g[i]
        mi = m[i] + (gi - m[i]) * c1          # s = g - m; s *= 1 - b1; m += s
        ui = u[i] * b2                        # u *= beta_2
        ai = abs(gi)
        if not (ui > ai or ui != ui):         # np.maximum(u, |g|): the second when equal,
            ui = ai                           # NaN propagates
        m[i] = mi
        u[i] = ui
        w[i] = w[i] - mi / ((ui + eps) * correction) * lr  # s = m / ((u + eps) * c) * lr


@compiled.kernel
def _lion(g, w, m, b1, c1, b2, c2, lr):
    for i in range(w.size):
        gi = g[i]
        si = m[i] * b1 + gi * c1              # s = m * b1; t = g * (1 - b1); s += t
        if si > 0:                            # w -= sign(s) * lr: sign 1, -1, 0 or NaN
            w[i] = w[i] - lr
        elif si < 0:
            w[i] = w[i] + lr                  # w - (-lr), the same bits
        elif si == 0:
            w[i] = w[i] - (lr - lr) * lr      # sign(+-0) is +0; +0 * lr
        else:
            w[i] = w[i] - si * lr             # NaN
        m[i] = m[i] * b2 + gi * c2            # m *= b2; t = g * (1 - b2); m += t
