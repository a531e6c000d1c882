"""Where each layer sits in the autograd graph: its distance from the model's output, and whether the model has
skip connections. Read once, from the graph of the first training forward pass (a forward hook on the root
module that removes itself), so that "near the input" means far from the loss, not early in registration order.

* ``depth[l]``: the longest path, in autograd nodes, from the model's output back to layer ``l``'s parameters
  (the smallest over its parameters); None for a layer the forward pass did not use.
* ``residual``: some addition joins a short branch and a long one (``x + f(x)``): the graph of a residual network
  or a transformer. An MLP or a plain CNN has none.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

MAX_NODES = 500_000  # a bigger graph is not walked (the facts stay unknown)
SKIP_MIN_GAP = 2  # an addition whose branches' heights differ by at least this many nodes is a skip connection


@dataclass
class GraphFacts:
    depth: list[int | None]
    residual: bool
    nodes: int


def _first_tensor(x) -> Tensor | None:
    if isinstance(x, Tensor):
        return x if x.grad_fn is not None else None
    values = x.values() if isinstance(x, dict) else x if isinstance(x, (tuple, list)) else ()
    for item in values:
        t = _first_tensor(item)
        if t is not None:
            return t
    return None


def read_graph(output, layer_of: dict[int, int], n_layers: int) -> GraphFacts | None:
    """The facts from ``output``'s autograd graph (None when there is no graph or it is too big).
    ``layer_of`` maps ``id(parameter)`` to its layer index."""
    out = _first_tensor(output)
    if out is None:
        return None
    root = out.grad_fn

    def children(node):
        return iter([c for c, _ in node.next_functions if c is not None])

    order, seen, stack = [], {root}, [(root, children(root))]
    while stack:  # iterative depth-first search: a node is listed after all its children (post-order)
        node, rest = stack[-1]
        for child in rest:
            if child not in seen:
                if len(seen) >= MAX_NODES:
                    return None
                seen.add(child)
                stack.append((child, children(child)))
                break
        else:
            stack.pop()
            order.append(node)
    height = {}
    for node in order:  # longest path down to a leaf
        height[node] = 1 + max((height[c] for c, _ in node.next_functions if c is not None), default=-1)
    dist = {root: 0}
    for node in reversed(order):  # parents before children: longest path from the output
        d = dist.get(node, 0)
        for child, _ in node.next_functions:
            if child is not None and dist.get(child, -1) < d + 1:
                dist[child] = d + 1
    depth: list[int | None] = [None] * n_layers
    residual = False
    for node in order:
        variable = getattr(node, "variable", None)
        if variable is not None and id(variable) in layer_of:
            l = layer_of[id(variable)]
            depth[l] = dist[node] if depth[l] is None else min(depth[l], dist[node])
        elif not residual and type(node).__name__.startswith("AddBackward"):
            heights = [height[c] for c, _ in node.next_functions if c is not None]
            residual = len(heights) == 2 and abs(heights[0] - heights[1]) >= SKIP_MIN_GAP
    return GraphFacts(depth, residual, len(order))


class GraphProbe:
    """A forward hook on the root module that reads the graph of the first forward pass with gradients."""

    def __init__(self, root: nn.Module, layer_of: dict[int, int], n_layers: int, guard):
        self.facts: GraphFacts | None = None
        self._layer_of, self._n, self._guard = layer_of, n_layers, guard
        self._handle = root.register_forward_hook(self._hook)

    def _hook(self, module, inputs, output) -> None:
        if not torch.is_grad_enabled() or _compiling():
            return
        self.remove()
        with self._guard("reading the autograd graph", "the first forward pass"):
            self.facts = read_graph(output, self._layer_of, self._n)

    def remove(self) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None


def _compiling() -> bool:
    compiler = getattr(torch, "compiler", None)
    return bool(compiler is not None and hasattr(compiler, "is_compiling") and compiler.is_compiling())
