"""Where each layer sits in the autograd graph: its distance from the loss, and whether the model has skip
connections. Read from the graphs of the losses the loop calls ``backward()`` on during the first recorded step
(seen through the watch's wrapper of ``torch.autograd.backward``, :mod:`gradwatch.probe.patches`), so that
"near the input" means far from the loss that really ran — a GAN's generator and discriminator each from their own
loss, a container whose ``forward`` is never called included. Where no backward is seen, the graph of the first training
forward pass of the root module is read instead (a forward hook that removes itself).

* ``depth[l]``: the longest path, in autograd nodes, from the loss back to layer ``l``'s parameters (the smallest
  over its parameters), in the graph of the first loss that reaches the layer; None for a layer no graph reached.
* ``loss_of[l]``: which of those losses (0, 1, … in the order of their backward calls) that is.
* ``residual``: some addition joins a short branch and a long one (``x + f(x)``): the graph of a residual network
  or a transformer. An MLP or a plain CNN has none.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from torch.autograd.graph import Node
from torch.utils.hooks import RemovableHandle

MAX_NODES = 500_000  # a bigger graph is not walked (the facts stay unknown)
SKIP_MIN_GAP = 2  # an addition whose branches' heights differ by at least this many nodes is a skip connection


MAX_LOSSES = 8  # backward calls of the first step read at most (gradient accumulation repeats the same graph)


@dataclass
class GraphFacts:
    depth: list[int | None]
    residual: bool
    nodes: int
    loss_of: list[int | None] = field(default_factory=list)

    def merge(self, other: GraphFacts, loss: int) -> None:
        """Add the layers that ``other`` (the graph of loss number ``loss``) reaches and this one does not."""
        for l, d in enumerate(other.depth):
            if d is not None and self.depth[l] is None:
                self.depth[l], self.loss_of[l] = d, loss
        self.residual = self.residual or other.residual
        self.nodes += other.nodes


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
    if root is None:  # a leaf or a tensor that does not require grad: no graph to read
        return None

    def children(node: Node) -> Iterator[Node]:
        return iter([c for c, _ in node.next_functions if c is not None])

    order: list[Node] = []
    seen: set[Node] = {root}
    stack = [(root, children(root))]
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
    height: dict[Node, int] = {}
    for node in order:  # longest path down to a leaf
        height[node] = 1 + max((height[c] for c in children(node)), default=-1)
    dist = {root: 0}
    for node in reversed(order):  # parents before children: longest path from the output
        d = dist.get(node, 0)
        for child in children(node):
            if dist.get(child, -1) < d + 1:
                dist[child] = d + 1
    depth: list[int | None] = [None] * n_layers
    residual = False
    for node in order:
        variable = getattr(node, "variable", None)
        if variable is not None and id(variable) in layer_of:
            l = layer_of[id(variable)]
            known = depth[l]
            depth[l] = dist[node] if known is None else min(known, dist[node])
        elif not residual and type(node).__name__.startswith("AddBackward"):
            heights = [height[c] for c in children(node)]
            residual = len(heights) == 2 and abs(heights[0] - heights[1]) >= SKIP_MIN_GAP
    return GraphFacts(depth, residual, len(order), [0 if d is not None else None for d in depth])


class GraphProbe:
    """Reads the graphs of the losses of the first recorded step (see the module's docstring); until one is seen,
    a forward hook on the root module reads the graph of the first forward pass with gradients."""

    def __init__(self, root: nn.Module, layer_of: dict[int, int], n_layers: int, guard):
        self.facts: GraphFacts | None = None
        self.from_loss = False  # the facts come from a loss's graph (not the root module's output)
        self._losses = 0
        self._settled = False
        self._layer_of, self._n, self._guard = layer_of, n_layers, guard
        self._handle: RemovableHandle | None = root.register_forward_hook(self._hook)

    @property
    def waiting(self) -> bool:
        """Whether it still reads the graphs of the losses that ``backward()`` is called on."""
        return not self._settled

    def _hook(self, module, inputs, output) -> None:
        if not torch.is_grad_enabled() or _compiling():
            return
        self._remove_hook()
        if self.from_loss:
            return
        with self._guard("reading the autograd graph", "the first forward pass"):
            self.facts = read_graph(output, self._layer_of, self._n)

    def on_backward(self, tensors) -> None:
        """``backward()`` is about to run on ``tensors``: read their graph (while :attr:`waiting`)."""
        if _compiling():
            return
        with self._guard("reading the autograd graph", "a backward call"):
            facts = read_graph(tensors, self._layer_of, self._n)
            if facts is None or all(d is None for d in facts.depth):
                return  # another model's loss
            if not self.from_loss or self.facts is None:
                self.facts, self.from_loss = facts, True
            else:
                self.facts.merge(facts, self._losses)
            self._losses += 1
            if self._losses >= MAX_LOSSES:
                self.settle()

    def settle(self) -> None:
        """The first step is over: read no more graphs (called at the end of every step; only the first acts)."""
        if self._settled:
            return
        self._settled = True
        if self.facts is not None:
            self._remove_hook()

    def _remove_hook(self) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

    def remove(self) -> None:
        self._remove_hook()
        self._settled = True


def _compiling() -> bool:
    compiler = getattr(torch, "compiler", None)
    return bool(compiler is not None and hasattr(compiler, "is_compiling") and compiler.is_compiling())
