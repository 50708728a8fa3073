"""Pictures of a computation graph: DOT source, Graphviz rendering, and a matplotlib drawing.

A graph has one node per ``Function`` (its op name and output shape) and one per leaf tensor it
reads: parameters (leaves that require grad, named from a ``params`` dict such as MAML's θ) and
constants (data, step sizes; ``constants=False`` hides them). Edges run from an op's inputs to the
op. Ops recorded by a backward pass run with ``create_graph=True`` are marked apart (orange): in
exact MAML they are the inner-loop gradients, and the outer backward pass differentiates through
them, which is where the Hessian-vector products come from. First-order MAML records none.

    >>> import tinymeta as tm
    >>> from tinymeta import viz
    >>> w = tm.tensor([1.0, 2.0], requires_grad=True)
    >>> (g,) = tm.grad(tm.sum(w ** 3), w, create_graph=True)   # 3 w² · 1: recorded as 3 ops
    >>> stats = viz.graph_stats(tm.sum(g * g), params={"w": w})
    >>> stats["forward"], stats["backward"]                    # Mul and Sum of g; Power, Mul, Mul
    (2, 3)

``to_dot`` needs nothing; ``render`` writes the .dot file and runs Graphviz's ``dot`` program (a
system package, not a Python one) for SVG/PNG; ``draw`` needs only matplotlib. Every walk over the
graph is iterative, so graphs of any depth (long inner loops) are fine.
"""

from __future__ import annotations

import inspect
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._checks import flag
from .engine import Tensor, _topological_order

Outputs = Tensor | Sequence[Tensor] | Mapping[str, Tensor]
COLOURS = {"forward": "#9ecae1", "backward": "#fd8d3c", "parameter": "#74c476", "constant": "#e0e0e0"}
LEGEND = {
    "forward": "forward op",
    "backward": "recorded by a backward pass (create_graph=True)",
    "parameter": "parameter (leaf that requires grad)",
    "constant": "constant",
}


@dataclass
class Node:
    """One node: ``kind`` is "forward", "backward", "parameter" or "constant"; ``depth`` is the
    longest path from a leaf (0 for leaves)."""

    label: str
    kind: str
    depth: int
    output: bool = False


def graph(
    outputs: Outputs, params: Mapping[str, Tensor] | None = None, constants: bool = True
) -> tuple[list[Node], list[tuple[int, int]]]:
    """(nodes, edges) of the graph behind ``outputs``: every input before the ops that read it; an
    edge (i, j) per input slot, so ``x * x`` has two edges from x. A Mapping of outputs names them."""
    constants = flag(constants, "constants")
    named = dict(outputs) if isinstance(outputs, Mapping) else {}
    if not isinstance(outputs, (Tensor, Mapping, list, tuple)):
        raise TypeError(f"outputs must be a Tensor, or a list, tuple or dict of them, got {type(outputs).__name__}")
    outputs = list(named.values()) if named else [outputs] if isinstance(outputs, Tensor) else list(outputs)
    for y in outputs:
        if not isinstance(y, Tensor):
            raise TypeError(f"outputs must be Tensors (one, a sequence or a dict of them), got {type(y).__name__}")
    if params is not None and not (isinstance(params, Mapping) and all(isinstance(t, Tensor) for t in params.values())):
        raise TypeError("params must be a dict of name -> the Tensor to label with it (as the graph holds it)")
    names: dict[int, str] = {}
    for n, t in {**(params or {}), **named}.items():  # one tensor under several names shows them all
        names[id(t)] = f"{names[id(t)]}, {n}" if id(t) in names else n
    nodes: list[Node] = []
    edges: list[tuple[int, int]] = []
    index: dict[int, int] = {}  # id(Function) or id(leaf Tensor) -> node number

    def leaf(t: Tensor) -> int:
        if id(t) not in index:
            if t.requires_grad:
                label, kind = f"{names.get(id(t), 'leaf')}\n{_shape(t)}", "parameter"
            else:
                value = f"{t.item():.4g}" if t.size == 1 else f"const\n{_shape(t)}"
                label, kind = names.get(id(t), value), "constant"
            index[id(t)] = len(nodes)
            nodes.append(Node(label, kind, 0))
        return index[id(t)]

    for f in reversed(_topological_order(outputs)):  # each Function after its inputs' creators
        sources = [
            index[id(x.creator)] if x.creator is not None else leaf(x)
            for x in f.inputs
            if x.creator is not None or x.requires_grad or constants
        ]
        y = f.output()
        label = type(f).__name__ + ("" if y is None else f"\n{_shape(y)}")
        if y is not None and id(y) in names:
            label = f"{names[id(y)]} = {label}"
        kind = "backward" if getattr(f, "in_backward", False) else "forward"
        index[id(f)] = len(nodes)
        nodes.append(Node(label, kind, 1 + max((nodes[s].depth for s in sources), default=0)))
        edges += [(s, index[id(f)]) for s in sources]
    for y in outputs:
        if y.creator is not None or y.requires_grad or constants:
            nodes[index[id(y.creator)] if y.creator is not None else leaf(y)].output = True
    return nodes, edges


def _shape(t: Tensor) -> str:
    return str(tuple(t.shape)) if t.ndim != 1 else f"({t.shape[0]},)"


def graph_stats(outputs: Outputs, params: Mapping[str, Tensor] | None = None, constants: bool = True) -> dict[str, int]:
    """Counts: ``nodes``, ``edges``, ``ops`` (= ``forward`` + ``backward``: ops recorded by a
    backward pass with ``create_graph=True``), ``parameters``, ``constants``, and ``depth`` (the
    longest path from a leaf to an output)."""
    nodes, edges = graph(outputs, params, constants)
    counts = {kind: sum(n.kind == kind for n in nodes) for kind in COLOURS}
    return {
        "nodes": len(nodes),
        "edges": len(edges),
        "ops": counts["forward"] + counts["backward"],
        "forward": counts["forward"],
        "backward": counts["backward"],
        "parameters": counts["parameter"],
        "constants": counts["constant"],
        "depth": max((n.depth for n in nodes), default=0),
    }


def to_dot(
    outputs: Outputs, params: Mapping[str, Tensor] | None = None, constants: bool = True, legend: bool = True
) -> str:
    """Graphviz DOT source of the graph behind ``outputs`` (no dependency): paste it into any DOT
    viewer, or ``render`` it. Outputs have a double border; ``legend`` adds a key of the colours."""
    legend = flag(legend, "legend")
    nodes, edges = graph(outputs, params, constants)
    shapes = {"forward": "box", "backward": "box", "parameter": "ellipse", "constant": "ellipse"}
    lines = [
        "digraph tinymeta {",
        '  node [fontname="Helvetica", fontsize=10, style="filled,rounded"];',
        '  edge [arrowsize=0.6, color="#555555"];',
    ]
    for i, n in enumerate(nodes):
        extra = ", peripheries=2" if n.output else ""
        lines.append(
            f'  n{i} [label="{_escape(n.label)}", shape={shapes[n.kind]}, fillcolor="{COLOURS[n.kind]}"{extra}];'
        )
    lines += [f"  n{a} -> n{b};" for a, b in edges]
    if legend:
        lines.append('  subgraph cluster_legend { label="legend"; fontname="Helvetica"; fontsize=10;')
        lines += [
            f'    legend_{kind} [label="{text}", shape={shapes[kind]}, fillcolor="{COLOURS[kind]}"];'
            for kind, text in LEGEND.items()
        ]
        lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _escape(label: str) -> str:
    return label.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render(dot_source_or_outputs: str | Outputs, path: str | Path, **options: Any) -> Path:
    """Write the graph to ``path``: always the DOT source (``path`` with suffix .dot), and for a
    .svg, .png or .pdf ``path`` the picture, by Graphviz's ``dot`` program. Without ``dot`` on PATH
    the .dot file is still written and a RuntimeError says how to get the picture. ``options`` go
    to ``to_dot`` when outputs (not DOT source) are given. Returns the path written last."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".dot", ".svg", ".png", ".pdf"):
        raise ValueError(f"render writes .dot, .svg, .png or .pdf files, got {str(path)!r}")
    if options and isinstance(dot_source_or_outputs, str):
        raise TypeError(f"render: options {sorted(options)} are to_dot's and apply to outputs, not to DOT source")
    accepted = [n for n in inspect.signature(to_dot).parameters if n != "outputs"]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise TypeError(f"render got unknown options {unknown}: it takes to_dot's {', '.join(accepted)}")
    source = (
        dot_source_or_outputs if isinstance(dot_source_or_outputs, str) else to_dot(dot_source_or_outputs, **options)
    )
    dot_path = path.with_suffix(".dot")
    try:
        dot_path.parent.mkdir(parents=True, exist_ok=True)
        dot_path.write_text(source)
    except OSError as error:
        raise OSError(f"render could not write {dot_path}: {error.strerror or error}") from error
    if suffix == ".dot":
        return dot_path
    program = shutil.which("dot")
    if program is None:
        raise RuntimeError(
            f"rendering {path.name} needs Graphviz's `dot` program, which is not on PATH: install Graphviz "
            f"(apt install graphviz, brew install graphviz, conda install graphviz) or render {dot_path} elsewhere; "
            "tinymeta.viz.draw draws the graph with matplotlib alone"
        )
    done = subprocess.run([program, f"-T{suffix[1:]}", str(dot_path), "-o", str(path)], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"Graphviz's dot could not render {path} from {dot_path}: {done.stderr.strip()}")
    return path


def layout(nodes: Sequence[Node], edges: Sequence[tuple[int, int]]) -> tuple[list[float], list[float]]:
    """(x, y) of each node for ``draw``: row -depth (a leaf one row above its first reader), and in
    each row, positions at least 1 apart near the mean position of each node's neighbours, found by
    sweeps down (inputs) and up (readers) the rows."""
    sources: list[list[int]] = [[] for _ in nodes]
    readers: list[list[int]] = [[] for _ in nodes]
    for a, b in edges:
        sources[b].append(a)
        readers[a].append(b)
    row = [
        n.depth if n.depth or not readers[i] else min(nodes[r].depth for r in readers[i]) - 1
        for i, n in enumerate(nodes)
    ]
    rows: dict[int, list[int]] = {}
    for i in range(len(nodes)):
        rows.setdefault(row[i], []).append(i)
    x = [0.0] * len(nodes)
    for members in rows.values():
        for k, i in enumerate(members):
            x[i] = k - (len(members) - 1) / 2
    down, up = sorted(rows), sorted(rows, reverse=True)
    for near, order in ((sources, down), (readers, up), (sources, down), (readers, up)):
        for r in order:
            wanted = {i: sum(x[j] for j in near[i]) / len(near[i]) if near[i] else x[i] for i in rows[r]}
            members = rows[r] = sorted(rows[r], key=wanted.__getitem__)
            placed: list[float] = []
            for i in members:
                placed.append(wanted[i] if not placed else max(wanted[i], placed[-1] + 1))
            shift = (sum(wanted.values()) - sum(placed)) / len(members)  # the row stays where it wants to be
            for i, p in zip(members, placed):
                x[i] = p + shift
    return x, [-float(r) for r in row]


def draw(
    outputs: Outputs,
    ax: Any = None,
    params: Mapping[str, Tensor] | None = None,
    constants: bool = False,
    labels: bool = True,
    fontsize: float = 5,
) -> Any:
    """Draw the graph with matplotlib alone, in rows: leaves at the top, each op one row below its
    deepest input, the outputs (bold) at the bottom; colours as in ``LEGEND``; without ``labels``,
    dots. Returns the axes (a new figure's, sized to the graph, when ``ax`` is None)."""
    try:
        import matplotlib.pyplot as plt
        from matplotlib.patches import Patch
    except ModuleNotFoundError as error:
        raise ModuleNotFoundError(
            "tinymeta.viz.draw needs matplotlib (pip install matplotlib, or tinymeta[demos]); "
            "tinymeta.viz.to_dot and render need no Python package"
        ) from error

    labels = flag(labels, "labels")
    nodes, edges = graph(outputs, params, constants)
    x, y = layout(nodes, edges)
    if ax is None:
        span = max(x, default=0) - min(x, default=0)
        _, ax = plt.subplots(figsize=(min(1.5 + 0.55 * span, 40), min(1 + 0.35 * (1 - min(y, default=0)), 60)))
    arrow = {"arrowstyle": "-|>", "color": "#777777", "lw": 0.5, "mutation_scale": 5, "shrinkA": 0, "shrinkB": 0}
    if labels:  # a node is its label in a coloured box; arrows run from box to box
        boxes = [
            ax.text(
                x[i], y[i], n.label, fontsize=fontsize, ha="center", va="center", zorder=3,
                bbox={"boxstyle": "round,pad=0.3", "fc": COLOURS[n.kind], "ec": "black" if n.output else "#777777",
                      "lw": 1.2 if n.output else 0.4},
            )
            for i, n in enumerate(nodes)
        ]  # fmt: skip
        for a, b in edges:
            ax.annotate("", xy=(0.5, 1), xycoords=boxes[b], xytext=(0.5, 0), textcoords=boxes[a], arrowprops=arrow)
        ax.set_xlim(min(x, default=0) - 0.7, max(x, default=0) + 0.7)
        ax.set_ylim(min(y, default=0) - 0.7, max(y, default=0) + 0.7)
    else:
        for a, b in edges:
            ax.annotate("", xy=(x[b], y[b]), xytext=(x[a], y[a]), arrowprops={**arrow, "shrinkA": 3, "shrinkB": 3})
        ax.scatter(x, y, s=30, c=[COLOURS[n.kind] for n in nodes], zorder=3,
                   edgecolors=["black" if n.output else "#777777" for n in nodes])  # fmt: skip
    kinds = [kind for kind in COLOURS if any(n.kind == kind for n in nodes)]
    handles = [Patch(facecolor=COLOURS[kind], edgecolor="#777777", label=LEGEND[kind]) for kind in kinds]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(0, 0), fontsize=max(fontsize + 1, 6), frameon=False)
    ax.set_axis_off()
    return ax
