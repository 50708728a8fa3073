"""Convolution and pooling options beyond the generated checks of test_ops.py: small examples worked
by hand (each equal to PyTorch 2.13's), the errors, and the identities the options must keep."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from op_specs import naive_conv2d  # first: op_specs imports op_specs_conv
from op_specs_conv import naive_conv2d_options, pool_output_size

import tinymeta as tm
from tinymeta.ops.conv import Col2Im, Im2Col

IMAGE = np.arange(16.0).reshape(1, 1, 4, 4)


def test_same_padding_puts_the_odd_row_and_column_after_as_pytorch() -> None:
    # A 2x2 (or 4x4) kernel with a single 1 at its top-left picks x_pad[p, q]: total padding k - 1,
    # (k - 1) // 2 before. 2x2: nothing before, so y = x; 4x4: one row/column before, so y is x shifted.
    two, four = np.zeros((1, 1, 2, 2)), np.zeros((1, 1, 4, 4))
    two[0, 0, 0, 0] = four[0, 0, 0, 0] = 1.0
    np.testing.assert_array_equal(tm.conv2d(IMAGE, two, padding="same").numpy(), IMAGE)
    shifted = np.zeros((1, 1, 4, 4))
    shifted[..., 1:, 1:] = IMAGE[..., :3, :3]
    np.testing.assert_array_equal(tm.conv2d(IMAGE, four, padding="same").numpy(), shifted)
    np.testing.assert_array_equal(tm.conv2d(IMAGE, two, padding="same", dilation=2).numpy(), shifted)  # span 3


@pytest.mark.parametrize(
    "kernel, dilation", list(itertools.product([(1, 1), (2, 3), (3, 2), (4, 4), (5, 1)], [1, 2, (1, 3)]))
)
def test_same_padding_keeps_the_size_for_odd_and_even_kernels(kernel, dilation) -> None:
    x = np.random.default_rng(0).standard_normal((2, 3, 5, 6))
    w = np.random.default_rng(1).standard_normal((4, 3) + kernel)
    y = tm.conv2d(x, w, padding="same", dilation=dilation)
    assert y.shape == (2, 4, 5, 6)
    np.testing.assert_allclose(y.numpy(), naive_conv2d_options(x, w, None, 1, "same", dilation, 1), rtol=1e-12)
    assert tm.conv2d(x, w[..., :1, :1], padding="valid").shape == (2, 4, 5, 6)


def test_dilation_stride_and_groups_on_worked_examples() -> None:
    # dilation 2 with a 2x2 kernel of ones: y[p, q] = x[p, q] + x[p, q + 2] + x[p + 2, q] + x[p + 2, q + 2]
    np.testing.assert_array_equal(tm.conv2d(IMAGE, np.ones((1, 1, 2, 2)), dilation=2).numpy(), [[[[20, 24], [36, 40]]]])
    # stride (1, 2) with a 1x1 kernel keeps every row and every other column
    np.testing.assert_array_equal(tm.conv2d(IMAGE, np.ones((1, 1, 1, 1)), stride=(1, 2)).numpy(), IMAGE[..., ::2])
    # padding (1, 0): one zero row above and below, no column
    y = tm.conv2d(IMAGE, np.ones((1, 1, 3, 1)), padding=(1, 0)).numpy()
    np.testing.assert_array_equal(y[0, 0, :, 0], [4, 12, 24, 20])
    # two groups of one channel: each filter scales its own channel only
    x = np.stack([IMAGE[0, 0], -IMAGE[0, 0]])[None]
    y = tm.conv2d(x, np.array([2.0, 3.0]).reshape(2, 1, 1, 1), groups=2).numpy()
    np.testing.assert_array_equal(y, np.stack([2 * IMAGE[0, 0], -3 * IMAGE[0, 0]])[None])


def test_groups_are_the_concatenation_of_one_convolution_per_group() -> None:
    rng = np.random.default_rng(0)
    x = tm.tensor(rng.standard_normal((2, 6, 5, 4)), requires_grad=True)
    w = tm.tensor(rng.standard_normal((9, 2, 2, 3)), requires_grad=True)
    b = tm.tensor(rng.standard_normal(9), requires_grad=True)
    options = dict(stride=(2, 1), padding=(1, 2), dilation=(1, 2))
    grouped = tm.conv2d(x, w, b, groups=3, **options)
    parts = [
        tm.conv2d(x[:, 2 * g : 2 * g + 2], w[3 * g : 3 * g + 3], b[3 * g : 3 * g + 3], **options) for g in range(3)
    ]
    joined = tm.concatenate(parts, axis=1)
    np.testing.assert_allclose(grouped.numpy(), joined.numpy(), rtol=1e-13, atol=1e-13)
    v = rng.standard_normal(grouped.shape)
    for g1, g2 in zip(tm.grad(grouped, [x, w, b], grad_outputs=v), tm.grad(joined, [x, w, b], grad_outputs=v)):
        np.testing.assert_allclose(g1.numpy(), g2.numpy(), rtol=1e-13, atol=1e-13)


def test_an_unbatched_input_is_the_first_of_a_batch() -> None:
    rng = np.random.default_rng(0)
    x, b = rng.standard_normal((2, 4, 5)), rng.standard_normal(4)
    for options in (dict(), dict(stride=2, padding=1, groups=2), dict(padding="same", dilation=(2, 1))):
        w = rng.standard_normal((4, 2 // options.get("groups", 1), 2, 2))
        one, batch = tm.conv2d(x, w, b, **options), tm.conv2d(x[None], w, b, **options)
        assert one.shape == batch.shape[1:]
        np.testing.assert_array_equal(one.numpy(), batch.numpy()[0])
    tasks = rng.standard_normal((4, 3, 2, 2, 2))  # one weight set per task, one unbatched image
    np.testing.assert_array_equal(tm.conv2d(x, tasks).numpy(), tm.conv2d(x[None], tasks).numpy()[:, 0])
    assert tm.max_pool2d(x, 2).shape == (2, 2, 2) and tm.avg_pool2d(x, 2, ceil_mode=True).shape == (2, 2, 3)


def test_positional_arguments_keep_their_old_order() -> None:
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((1, 2, 5, 5)), rng.standard_normal((3, 2, 3, 3)), rng.standard_normal(3)
    np.testing.assert_allclose(tm.conv2d(x, w, b, 2, 1).numpy(), naive_conv2d(x, w, b, 2, 1), rtol=1e-12)
    for pool in (tm.max_pool2d, tm.avg_pool2d):
        np.testing.assert_array_equal(pool(x, 3, 2, 1).numpy(), pool(x, kernel_size=3, stride=2, padding=1).numpy())


@pytest.mark.parametrize("ceil_mode", [False, True])
def test_pooling_output_sizes_follow_pytorchs_formula(ceil_mode) -> None:
    # out = floor or ceil((H + 2p - d(k - 1) - 1) / s) + 1, less one if that last window would start in the
    # bottom padding; ceil_mode may then let the first window overhang the input (H=2, k=3, s=2: one window).
    for h, k, s, p, d in itertools.product(range(1, 7), range(1, 4), range(1, 4), range(0, 2), range(1, 3)):
        if p > k // 2:
            continue
        expected = pool_output_size(h, k, s, p, d, ceil_mode)
        x = np.zeros((1, 1, h, 2))
        options = dict(kernel_size=(k, 1), stride=(s, 1), padding=(p, 0), ceil_mode=ceil_mode)
        if expected < 1:
            with pytest.raises(ValueError, match="no window fits"):
                tm.max_pool2d(x, dilation=(d, 1), **options)
            continue
        assert tm.max_pool2d(x, dilation=(d, 1), **options).shape[-2] == expected, (h, k, s, p, d)
        if d == 1:
            assert tm.avg_pool2d(x, **options).shape[-2] == expected, (h, k, s, p)


def test_ceil_mode_windows_on_a_worked_example() -> None:
    x = np.arange(25.0).reshape(1, 1, 5, 5)
    np.testing.assert_array_equal(
        tm.max_pool2d(x, 2, ceil_mode=True).numpy(), [[[[6, 8, 9], [16, 18, 19], [21, 23, 24]]]]
    )
    t = tm.tensor(-x, requires_grad=True)  # the overhang is -inf padding too: never the maximum, nor its gradient
    (g,) = tm.grad(tm.sum(tm.max_pool2d(t, 2, ceil_mode=True)), t)
    expected = np.zeros((5, 5))
    expected[::2, ::2] = 1.0
    np.testing.assert_array_equal(g.numpy()[0, 0], expected)
    np.testing.assert_array_equal(tm.avg_pool2d(x, 2, ceil_mode=True).numpy()[0, 0, 2], [20.5, 22.5, 24])


def test_average_pooling_divisors_on_a_padded_example() -> None:
    # ones (4, 4), k=3, s=2, padding 1, ceil_mode: window rows [-1, 1], [1, 3], [3, 5] (row 5 lies past the
    # padding), holding 2, 3, 1 image rows; counting the padding gives 3, 3, 2 (never the overhang).
    x = tm.tensor(np.ones((1, 1, 4, 4)), requires_grad=True)
    sums = np.outer([2, 3, 1], [2, 3, 1])
    with_pad = np.outer([3, 3, 2], [3, 3, 2])
    for options, divisor in [
        (dict(), with_pad),
        (dict(count_include_pad=False), sums),
        (dict(divisor_override=2), 2),
        (dict(count_include_pad=False, divisor_override=5), 5),
    ]:
        y = tm.avg_pool2d(x, 3, 2, 1, ceil_mode=True, **options)
        np.testing.assert_allclose(y.numpy()[0, 0], sums / divisor, rtol=1e-15)
        v = np.arange(9.0).reshape(1, 1, 3, 3)
        (g,) = tm.grad(y, x, grad_outputs=v)
        expected = np.zeros((6, 7))  # the padded image (rows -1..4, columns -1..5), then cropped
        for p, q in itertools.product(range(3), range(3)):
            expected[2 * p : 2 * p + 3, 2 * q : 2 * q + 3] += v[0, 0, p, q] / np.broadcast_to(divisor, (3, 3))[p, q]
        np.testing.assert_allclose(g.numpy()[0, 0], expected[1:5, 1:5], rtol=1e-14)
    no_overhang = tm.avg_pool2d(np.ones((1, 1, 3, 3)), 2, 1, 1).numpy()[0, 0]  # count_include_pad: always k*k here
    np.testing.assert_array_equal(no_overhang, np.outer([1, 2, 2, 1], [1, 2, 2, 1]) / 4)


def test_a_window_of_padding_alone_gives_minus_infinity_and_no_gradient() -> None:
    # Possible only with dilation: k=2, d=3 on 2 rows with padding 1 puts the taps at rows -1 and 2. PyTorch
    # gives -inf too (and its backward crashes on it).
    x = tm.tensor([[[[1.0, 2.0], [3.0, 4.0]]]], requires_grad=True)
    y = tm.max_pool2d(x, 2, 1, 1, 3)
    np.testing.assert_array_equal(y.numpy(), [[[[-np.inf]]]])
    (g,) = tm.grad(tm.sum(y), x)
    np.testing.assert_array_equal(g.numpy(), np.zeros((1, 1, 2, 2)))


def test_im2col_and_col2im_are_each_others_adjoint_for_every_geometry() -> None:
    # <Im2Col x, c> = <x, Col2Im c>: the pair that makes every order of derivative work.
    rng = np.random.default_rng(0)
    for _ in range(30):
        kernel = tuple(int(k) for k in rng.integers(1, 4, 2))
        stride, dilation = tuple(int(s) for s in rng.integers(1, 3, 2)), tuple(int(d) for d in rng.integers(1, 3, 2))
        padding = tuple(tuple(int(p) for p in rng.integers(0, 3, 2)) for _ in range(2))
        size = tuple(int(n) + d * (k - 1) for n, d, k in zip(rng.integers(1, 5, 2), dilation, kernel))
        x = rng.standard_normal((2, 3) + size)
        cols = Im2Col(kernel, stride, padding, dilation).forward(x)
        c = rng.standard_normal(cols.shape)
        back = Col2Im(size, kernel, stride, padding, dilation).forward(c)
        assert back.shape == x.shape
        np.testing.assert_allclose(np.sum(cols * c), np.sum(x * back), rtol=1e-12)


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: tm.conv2d(np.ones((1, 4, 3, 3)), np.ones((3, 2, 1, 1)), groups=2), ValueError, "groups=2 must divide"),
        (lambda: tm.conv2d(np.ones((1, 3, 3, 3)), np.ones((2, 1, 1, 1)), groups=3), ValueError, "groups=3 must divide"),
        (lambda: tm.conv2d(np.ones((1, 4, 3, 3)), np.ones((2, 1, 1, 1)), groups=2), ValueError, "weight expects 2"),
        (lambda: tm.conv2d(np.ones((1, 2, 3, 3)), np.ones((2, 2, 1, 1)), groups=0), ValueError, "groups must be"),
        (lambda: tm.conv2d(np.ones((1, 1, 3, 3)), np.ones((1, 1, 2, 2)), stride=2, padding="same"), ValueError,
         r"padding='same' needs stride 1.*\(2, 2\)"),
        (lambda: tm.conv2d(np.ones((1, 1, 3, 3)), np.ones((1, 1, 2, 2)), padding="full"), ValueError,
         "'valid' or 'same', got 'full'"),
        (lambda: tm.conv2d(np.ones((1, 1, 3, 3)), np.ones((1, 1, 2, 2)), dilation=-1), ValueError,
         "dilation must be an integer >= 1, got -1"),
        (lambda: tm.conv2d(np.ones((1, 1, 3, 3)), np.ones((1, 1, 2, 2)), dilation=3), ValueError,
         r"spans \(4, 4\), larger than the padded input \(3, 3\)"),
        (lambda: tm.conv2d(np.ones((1, 1, 3, 3)), np.ones((1, 1, 2, 2)), stride=(1, 2, 3)), ValueError,
         r"stride must be an integer or a pair.*\(1, 2, 3\)"),
        (lambda: tm.conv2d(np.ones((1, 1, 3, 3)), np.ones((1, 1, 2, 2)), padding=(1.5, 0)), TypeError,
         "padding must be an integer, got 1.5"),
        (lambda: tm.conv2d(np.ones((3, 3)), np.ones((1, 1, 2, 2))), ValueError, r"\(C, H, W\)"),
        (lambda: tm.avg_pool2d(np.ones((1, 1, 4, 4)), 2, divisor_override=0), ValueError,
         "divisor_override must be an integer >= 1, got 0"),
        (lambda: tm.avg_pool2d(np.ones((1, 1, 4, 4)), 2, count_include_pad=1), TypeError,
         "count_include_pad must be True or False, got 1"),
        (lambda: tm.max_pool2d(np.ones((1, 1, 4, 4)), 2, ceil_mode="yes"), TypeError,
         "ceil_mode must be True or False"),
        (lambda: tm.max_pool2d(np.ones((1, 1, 4, 4)), (3, 2), padding=(1, 2)), ValueError,
         r"at most half the kernel size, got padding=\(1, 2\) for kernel_size=\(3, 2\)"),
        (lambda: tm.max_pool2d(np.ones((1, 1, 4, 4)), 3, padding=1, dilation=0), ValueError, "dilation must be"),
        (lambda: tm.max_pool2d(np.ones((1, 1, 2, 2)), 3), ValueError, "larger than the padded input.*no window fits"),
        (lambda: tm.avg_pool2d(np.ones((1, 1, 2, 5)), (1, 3), stride=(1, 0)), ValueError,
         "stride must be an integer >= 1, got 0"),
    ],
)  # fmt: skip
def test_bad_options_are_refused_naming_the_argument_and_its_value(call, error, message) -> None:
    with pytest.raises(error, match=message):
        call()
