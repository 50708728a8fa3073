"""tinymeta.viz on known graphs: node and edge counts, the ops a backward pass records, DOT source,
rendering without Graphviz, the matplotlib drawing, and graphs deeper than Python's recursion limit."""

from __future__ import annotations

import os
import re
import stat
import sys
import threading

import numpy as np
import pytest

import tinymeta as tm
from tinymeta import nn, viz
from tinymeta.engine import _topological_order
from tinymeta.meta import MAML


def functions(*outputs: tm.Tensor) -> set:
    return set(_topological_order(outputs))


def marked(*outputs: tm.Tensor) -> set:
    return {f for f in functions(*outputs) if getattr(f, "in_backward", False)}


def affine() -> tuple[tm.Tensor, ...]:
    x = tm.tensor([1.0, 2.0, 3.0])
    w = tm.tensor([0.5, -1.0, 2.0], requires_grad=True)
    b = tm.tensor([0.1, 0.2, 0.3], requires_grad=True)
    return x, w, b, tm.sum(x * w + b)


# ---- counts on known graphs ----------------------------------------------------------------------


def test_counts_of_a_known_graph() -> None:
    x, w, b, y = affine()
    # leaves x, w, b; ops Mul(x, w), Add(., b), Sum(.): 6 nodes, one edge per input slot: 2 + 2 + 1
    assert viz.graph_stats(y) == dict(
        nodes=6, edges=5, ops=3, forward=3, backward=0, parameters=2, constants=1, depth=3
    )
    # without constants: x and its edge go
    assert viz.graph_stats(y, constants=False) == dict(
        nodes=5, edges=4, ops=3, forward=3, backward=0, parameters=2, constants=0, depth=3
    )


def test_an_input_read_twice_gives_two_edges_and_shared_nodes_count_once() -> None:
    w = tm.tensor([1.0, 2.0], requires_grad=True)
    square = w * w
    assert viz.graph_stats(square)["edges"] == 2 and viz.graph_stats(square)["nodes"] == 2
    a, b = tm.sum(square), tm.exp(square)  # two outputs sharing w and w * w
    stats = viz.graph_stats([a, b])
    assert (stats["nodes"], stats["edges"], stats["ops"]) == (4, 4, 3)
    nodes, _ = viz.graph([a, b])
    assert sum(n.output for n in nodes) == 2


def test_a_leaf_output_is_one_node() -> None:
    w = tm.tensor([1.0, 2.0], requires_grad=True)
    assert viz.graph_stats(w) == dict(
        nodes=1, edges=0, ops=0, forward=0, backward=0, parameters=1, constants=0, depth=0
    )
    assert viz.graph_stats(tm.tensor(1.0), constants=False)["nodes"] == 0


def test_outputs_must_be_tensors() -> None:
    with pytest.raises(TypeError, match="outputs must be Tensors.*got float"):
        viz.graph_stats([affine()[-1], 1.0])
    stats = viz.graph_stats({"y": affine()[-1]})  # a dict of outputs is fine
    assert stats["nodes"] == 6
    for bad in (3.0, "y", None, np.ones(2)):
        with pytest.raises(TypeError, match=f"a Tensor, or a list, tuple or dict of them, got {type(bad).__name__}"):
            viz.graph_stats(bad)


def test_params_that_could_label_nothing_are_refused_and_the_other_options_named() -> None:
    x, *_, y = affine()
    for params in ([x], {"x": x.numpy()}):  # a list has no names; an array is not the graph's tensor
        with pytest.raises(TypeError, match="params must be a dict of name -> the Tensor to label"):
            viz.graph_stats(y, params=params)
    with pytest.raises(TypeError, match=r"render got unknown options \['bogus'\]"):
        viz.render(y, "graph.dot", bogus=1)
    with pytest.raises(TypeError, match=r"options \['legend'\] are to_dot's and apply to outputs, not to DOT source"):
        viz.render("digraph {}", "graph.dot", legend=False)


def test_one_output_under_two_names_shows_both() -> None:
    y = affine()[-1]
    labels = [n.label for n in viz.graph({"loss": y, "objective": y})[0] if n.output]
    assert len(labels) == 1 and labels[0].startswith("loss, objective = ")


def test_depth_is_the_longest_path_from_a_leaf() -> None:
    w = tm.tensor(1.0, requires_grad=True)
    y = tm.sin(tm.sin(tm.sin(w))) + w  # the long path has 4 ops, the short one 1
    nodes, edges = viz.graph(y)
    assert [n.depth for n in nodes if n.kind != "forward"] == [0]
    assert max(n.depth for n in nodes) == 4 and viz.graph_stats(y)["depth"] == 4


# ---- ops recorded by a backward pass -------------------------------------------------------------


def test_exactly_the_ops_of_a_recorded_backward_pass_are_marked() -> None:
    w = tm.tensor([0.3, -0.7], requires_grad=True)
    y = tm.sum(tm.tanh(w) * 2.0)
    forward = functions(y)
    (g,) = tm.grad(y, w, create_graph=True)  # 2 (1 - tanh(w)²): reads the forward Tanh's output
    z = tm.sum(g * g)
    after = functions(z) - functions(g)  # the Mul and Sum applied to the gradient
    recorded = functions(g) - forward
    assert recorded and functions(g) & forward  # the gradient's graph reuses forward nodes
    assert marked(z) == recorded
    assert not any(getattr(f, "in_backward", False) for f in forward | after)
    stats = viz.graph_stats(z)
    assert stats["backward"] == len(recorded) and stats["forward"] == len(functions(z) - recorded)


def test_nothing_is_marked_without_create_graph() -> None:
    x, w, b, y = affine()
    w2 = w * w
    (g,) = tm.grad(tm.sum(w2), w)  # not recorded: a constant
    assert g.creator is None
    z = tm.sum(w2 * g)
    assert viz.graph_stats(z)["backward"] == 0 and not marked(z)
    y.backward()
    assert viz.graph_stats(tm.sum(w * w.grad))["backward"] == 0


def test_backward_with_create_graph_marks_the_gradient_it_accumulates() -> None:
    w = tm.tensor([1.0, 2.0], requires_grad=True)
    tm.sum(w**3).backward(create_graph=True)
    assert w.grad.creator is not None and w.grad.creator.in_backward
    assert viz.graph_stats(w.grad)["forward"] == 0


def test_hvp_records_its_inner_gradient_and_forward_ops_afterwards_are_not_marked() -> None:
    w = tm.tensor([1.0, 2.0], requires_grad=True)
    _, hv = tm.hvp(lambda p: tm.sum(tm.sin(p) * p), w, tm.tensor([1.0, 0.0]))
    assert viz.graph_stats(hv)["backward"] > 0  # both of its backward passes are recorded (w requires grad)
    y = tm.sum(tm.exp(w))
    assert viz.graph_stats(y)["backward"] == 0


def test_the_mark_is_reset_when_a_backward_pass_fails() -> None:
    class Broken(tm.Function):
        def forward(self, x):
            return x * 1.0

        def backward(self, gy):
            raise ArithmeticError("broken backward")

    w = tm.tensor([1.0], requires_grad=True)
    with pytest.raises(ArithmeticError):
        tm.grad(tm.sum(Broken()(w) * w), w, create_graph=True)
    assert viz.graph_stats(tm.sum(w * w))["backward"] == 0


def test_the_mark_is_per_thread() -> None:
    inside, done, seen = threading.Barrier(2), threading.Barrier(2), {}

    class Half(tm.Function):  # x² / 2, whose backward waits while another thread runs forward ops
        def forward(self, x):
            return x * x / 2

        def backward(self, gy):
            inside.wait()
            done.wait()
            return gy * self.inputs[0]

    w = tm.tensor([1.0, 2.0], requires_grad=True)

    def backward_pass() -> None:
        (g,) = tm.grad(tm.sum(Half()(w)), w, create_graph=True)
        seen["backward thread"] = g.creator.in_backward

    def forward_ops() -> None:
        inside.wait()  # the other thread is inside its backward pass now
        seen["other thread"] = getattr((w * 3.0).creator, "in_backward", False)
        done.wait()

    threads = [threading.Thread(target=backward_pass), threading.Thread(target=forward_ops)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == {"backward thread": True, "other thread": False}


def maml_meta_loss(first_order: bool, steps: int) -> tuple[tm.Tensor, dict]:
    model = nn.MLP([1, 4, 1])
    loss = lambda params, x, y: nn.mse_loss(model(params, x), y)  # noqa: E731
    maml = MAML(loss, inner_lr=0.1, inner_steps=steps, first_order=first_order)
    theta = maml.init(model.init(seed=0))
    rng = np.random.default_rng(0)
    x = rng.uniform(-5, 5, (2, 1, 5, 1))
    return maml.meta_loss(theta, x[0], np.sin(x[0]), x[1], np.sin(x[1])), theta


def test_exact_maml_has_recorded_gradients_and_first_order_maml_none() -> None:
    exact = {s: viz.graph_stats(maml_meta_loss(False, s)[0]) for s in (1, 2, 3)}
    first = {s: viz.graph_stats(maml_meta_loss(True, s)[0]) for s in (1, 2, 3)}
    assert all(exact[s]["backward"] > 0 for s in exact) and all(first[s]["backward"] == 0 for s in first)
    growth = [exact[s + 1]["nodes"] - exact[s]["nodes"] for s in (1, 2)]
    assert growth[0] == growth[1] > 0  # every inner step adds the same ops
    assert first[1]["nodes"] == first[2]["nodes"] == first[3]["nodes"]


# ---- DOT source ----------------------------------------------------------------------------------


def check_dot(source: str) -> tuple[set[str], list[tuple[str, str]]]:
    """A minimal parse: balanced braces, and every edge endpoint declared as a node."""
    depth = 0
    for char in re.sub(r'"(\\.|[^"\\])*"', '""', source):  # braces inside labels do not count
        depth += {"{": 1, "}": -1}.get(char, 0)
        assert depth >= 0
    assert depth == 0 and source.startswith("digraph")
    declared = set(re.findall(r"^\s*(\w+) \[label=", source, re.M))
    edges = re.findall(r"^\s*(\w+) -> (\w+);", source, re.M)
    assert all(a in declared and b in declared for a, b in edges), edges
    return declared, edges


def test_dot_source_declares_every_node_and_edge() -> None:
    x, w, b, y = affine()
    declared, edges = check_dot(viz.to_dot(y))
    assert len(edges) == 5 and len(declared - {n for n in declared if n.startswith("legend_")}) == 6
    declared, edges = check_dot(viz.to_dot(y, constants=False, legend=False))
    assert len(edges) == 4 and len(declared) == 5


def test_dot_shows_names_ops_shapes_and_marks() -> None:
    loss, theta = maml_meta_loss(False, 1)
    source = viz.to_dot(loss, params=theta)
    check_dot(source)
    for name in theta:
        assert f'label="{name}\\n' in source
    assert "MatMul" in source and "Relu" in source and "peripheries=2" in source
    assert viz.COLOURS["backward"] in source and "create_graph=True" in source  # marked nodes and the legend
    w = tm.tensor([1.0, 2.0], requires_grad=True)
    phi = {"phi.w": w * 2.0}
    assert 'label="phi.w = Mul\\n(2,)"' in viz.to_dot(phi)  # a Mapping of outputs names them


def test_labels_are_escaped() -> None:
    w = tm.tensor(1.0, requires_grad=True)
    source = viz.to_dot(w * 2.0, params={'say "hi"\\': w})
    assert 'label="say \\"hi\\"\\\\\\n()"' in source
    check_dot(source)


# ---- render: Graphviz's dot is optional ----------------------------------------------------------


def test_render_without_dot_writes_the_source_and_says_what_to_do(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    y = affine()[-1]
    assert viz.render(y, tmp_path / "g.dot") == tmp_path / "g.dot"
    check_dot((tmp_path / "g.dot").read_text())
    with pytest.raises(RuntimeError, match="Graphviz's `dot` program, which is not on PATH"):
        viz.render(y, tmp_path / "h.svg")
    assert (tmp_path / "h.dot").read_text() == viz.to_dot(y)
    with pytest.raises(ValueError, match=r"\.dot, \.svg, \.png or \.pdf"):
        viz.render(y, tmp_path / "k.jpeg")
    assert not (tmp_path / "k.dot").exists()  # a bad name is refused before anything is written
    assert viz.render(y, tmp_path / "u.DOT") == tmp_path / "u.dot"  # suffixes in any case
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OSError, match=f"render could not write {re.escape(str(blocker / 'g.dot'))}"):
        viz.render(y, blocker / "g.dot")  # a folder that is a file


@pytest.mark.skipif(sys.platform == "win32", reason="a shell script stands in for dot")
def test_render_runs_dot_when_it_is_on_path(tmp_path, monkeypatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "dot"  # records its arguments, as Graphviz would be called
    fake.write_text('#!/bin/sh\necho "$@" > "$4"\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", str(bin_dir) + os.pathsep + os.environ.get("PATH", ""))
    out = viz.render(viz.to_dot(affine()[-1]), tmp_path / "g.svg")
    assert out == tmp_path / "g.svg" and out.read_text().split() == ["-Tsvg", str(tmp_path / "g.dot"), "-o", str(out)]
    fake.write_text('#!/bin/sh\necho "Error: syntax error in line 1" >&2\nexit 1\n')  # dot failing says why
    with pytest.raises(RuntimeError, match="could not render .*g.png.*syntax error in line 1"):
        viz.render("not dot", tmp_path / "g.png")


def test_draw_without_matplotlib_says_what_to_install(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now fails
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ModuleNotFoundError, match="draw needs matplotlib.*to_dot and render need no Python package"):
        viz.draw(affine()[-1])


# ---- draw: matplotlib only -----------------------------------------------------------------------


def test_draw_returns_axes() -> None:
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    loss, theta = maml_meta_loss(False, 1)
    ax = viz.draw(loss, params=theta)
    labels = [t for t in ax.texts if t.get_text()]  # the arrows are annotations without text
    assert ax.get_legend() is not None and len(labels) == viz.graph_stats(loss, constants=False)["nodes"]
    fig, given = plt.subplots()
    assert viz.draw(affine()[-1], ax=given, constants=True, labels=False) is given
    assert not [t for t in given.texts if t.get_text()]
    plt.close("all")


# ---- deep graphs ---------------------------------------------------------------------------------


def test_graphs_deeper_than_the_recursion_limit() -> None:
    w = tm.tensor([0.1, 0.2], requires_grad=True)
    y = w
    depth = sys.getrecursionlimit() + 500
    for _ in range(depth):
        y = y * 1.0001
    stats = viz.graph_stats(y)
    assert (stats["ops"], stats["depth"], stats["constants"], stats["edges"]) == (depth, depth, depth, 2 * depth)
    check_dot(viz.to_dot(y))
