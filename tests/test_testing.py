"""The checkers themselves: they pass on right derivatives and catch wrong ones, saying where."""

from __future__ import annotations

import numpy as np
import pytest

import tinymeta as tm
from tinymeta.testing import GradcheckError, gradcheck, gradgradcheck, numerical_gradient


class SquareWithWrongGradient(tm.Function):
    """y = x^2, with the factor 2 forgotten in backward."""

    __slots__ = ()

    def forward(self, x):
        return x * x

    def backward(self, gy):
        return gy * self.inputs[0]


class ExpWithConstantGradient(tm.Function):
    """y = exp(x), with a backward that breaks the engine's rule: it reads ``.data``.

    Its first derivative is right, but the gradient is a constant, so the second derivative is
    silently 0 instead of exp(x): exactly the bug gradgradcheck exists to catch.
    """

    __slots__ = ()

    def forward(self, x):
        return np.exp(x)

    def backward(self, gy):
        return gy * tm.tensor(np.exp(self.inputs[0].data))


@pytest.mark.parametrize(
    "settings, error, message",
    [
        (dict(eps=0), ValueError, "eps must be a finite number > 0"),
        (dict(eps="1e-6"), TypeError, "eps must be a real number"),
        (dict(atol=float("nan")), ValueError, "atol must be a finite number >= 0"),
        (dict(rtol=-1), ValueError, "rtol must be a finite number >= 0"),
        (dict(seed=1.5), TypeError, "seed must be an integer"),
    ],
)
def test_gradcheck_names_a_bad_setting_instead_of_blaming_a_right_gradient(settings, error, message) -> None:
    x = tm.tensor([0.3, 1.2])
    with pytest.raises(error, match=message):
        gradcheck(tm.tanh, [x], **settings)


def test_inputs_given_as_one_tensor_instead_of_a_list_are_refused() -> None:
    # iterating the tensor would check its rows as separate arguments (or a 0-d input for one element)
    for check in (gradcheck, numerical_gradient):
        with pytest.raises(TypeError, match=r"inputs must be a list of the arguments of f \(gradcheck\(f, \[x\]\)"):
            check(tm.tanh, tm.tensor([0.3]))


def test_a_central_difference_that_overflows_checks_nothing_and_says_so() -> None:
    # its tolerance, rtol * inf, would pass any analytic value, a wrong zero included
    class ExpWithZeroGradient(tm.Function):
        def forward(self, x):
            return np.exp(x)

        def backward(self, gy):
            return gy * 0

    with np.errstate(over="ignore"), pytest.raises(GradcheckError, match=r"the central difference is inf .* eps"):
        gradcheck(lambda x: ExpWithZeroGradient()(x), [tm.tensor([709.78])], eps=1e-2)


def test_gradcheck_accepts_a_correct_gradient() -> None:
    assert gradcheck(lambda x, y: tm.sin(x) * y, [np.array([0.1, 2.0]), np.array([3.0, -1.0])])


def test_gradcheck_reports_input_element_and_both_values() -> None:
    x = np.array([0.5, -1.0, 2.0])
    with pytest.raises(GradcheckError) as info:
        gradcheck(lambda a, b: a + SquareWithWrongGradient()(b), [np.zeros(3), x])
    message = str(info.value)
    assert "input 1" in message and "element (0,)" in message
    assert "analytic" in message and "numeric" in message


def test_gradgradcheck_catches_a_backward_that_is_not_differentiable() -> None:
    x = np.array([0.3, -0.2])
    assert gradcheck(lambda t: ExpWithConstantGradient()(t), [x])  # first order is right
    with pytest.raises(GradcheckError, match="input 0"):
        gradgradcheck(lambda t: ExpWithConstantGradient()(t), [x])
    assert gradgradcheck(tm.exp, [x])


def test_numerical_gradient_of_a_known_function() -> None:
    # F(x) = <v, x^3> has gradient 3 x^2 v, with v the seed's projection vector.
    x = np.array([[0.5, -1.0], [2.0, 0.25]])
    v = np.random.default_rng(7).standard_normal(x.shape)
    (numeric,) = numerical_gradient(lambda t: t**3, [x], seed=7)
    np.testing.assert_allclose(numeric, 3 * x**2 * v, rtol=1e-6, atol=1e-8)


def test_gradcheck_rejects_a_function_that_returns_no_tensor() -> None:
    with pytest.raises(TypeError, match="Tensor"):
        gradcheck(lambda x: x.numpy(), [np.ones(2)])
