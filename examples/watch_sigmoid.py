"""A watch example: a 6 × 64 sigmoid net with N(0, 0.05²) weights on the embedded digits, 20 SGD steps,
watched with every statistic; prints the report (tables and diagnosis).

    python examples/watch_sigmoid.py
"""

import torch
from torch import nn

import gradwatch as gw
from gradwatch.lab import load_dataset
from gradwatch.lab.models import initialize, mlp

torch.manual_seed(0)
data = load_dataset("digits")
model = mlp([64] + [64] * 6 + [10], "sigmoid")
initialize(model, "normal", init_std=0.05, generator=torch.Generator().manual_seed(0))
opt = torch.optim.SGD(model.parameters(), lr=0.1)
with gw.watch(model, optimizer=opt, stats="full") as w:
    for step in range(20):
        idx = torch.randint(0, len(data.x_train), (64,))
        opt.zero_grad()
        nn.functional.cross_entropy(model(data.x_train[idx]), data.y_train[idx]).backward()
        opt.step()
w.report()
