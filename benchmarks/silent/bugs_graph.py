"""Parameters cut from the loss (``no_gradient``) or left out of the optimizer (``not_in_optimizer``)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .loop import (
    F,
    digit_batches,
    image_batches,
    models,
    presence_batches,
    text_batches,
    watched,
)
from .registry import Case, bug, modules_of, param_modules


class TwoBranch(nn.Module):
    """Two convolutional branches over the same image, fused by a linear head."""

    def __init__(self, detach_b: bool):
        super().__init__()
        self.a = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU())
        self.b = nn.Sequential(nn.Conv2d(1, 8, 5, padding=2), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU())
        self.head = nn.Linear(16, 10)
        self.detach_b = detach_b

    def forward(self, x):
        fa = self.a(x).mean((2, 3))
        fb = self.b(x).mean((2, 3))
        if self.detach_b:
            fb = fb.detach()  # the bug: branch b's features leave the graph
        return self.head(torch.cat([fa, fb], 1))


def _classify(model, opt, batches, head=lambda out: out):
    def step(t: int) -> None:
        x, y = next(batches)
        opt.zero_grad()
        F.cross_entropy(head(model(x)), y).backward()
        opt.step()
    return step


@bug("d2_1386_detached_branch", "no_gradient", step=0)
def detached_branch(steps: int) -> Case:
    """A two-branch CNN whose second branch is ``.detach()``-ed before the fusion: its parameters, stepped by the
    optimizer, never get a gradient. The situation of "your module has parameters that were not used in producing
    loss" (facebookresearch/detectron2 issue #1386; pytorch/pytorch pull #20586 documents it for DDP). Branch b's
    two convolutions, from step 0."""
    model = TwoBranch(detach_b=True)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    return watched(model, opt, _classify(model, opt, image_batches()), steps, param_modules(model, "b"))


class NumpyStage(nn.Module):
    """A conv stage, then a nonlinearity computed in NumPy (the bug), then a linear classifier."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        h = torch.relu(self.conv2(torch.relu(self.conv1(x)))).mean((2, 3))
        h = torch.from_numpy(np.tanh(h.detach().cpu().numpy()))  # the bug: a NumPy round trip
        return self.fc(h)


@bug("torchlogix17_numpy_in_forward", "no_gradient", step=0)
def numpy_in_forward(steps: int) -> Case:
    """A CNN whose forward converts the features to NumPy and back (ligerlac/torchlogix pull #17: "you should not
    convert torch tensors to numpy arrays and back as it breaks the computational graph"): both convolutions,
    though stepped, never get a gradient; only the classifier learns. conv1 and conv2, from step 0."""
    model = NumpyStage()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    return watched(model, opt, _classify(model, opt, image_batches()), steps, ["conv1", "conv2"])


class BertCls(nn.Module):
    """``BertModel`` with a classifier on the [CLS] hidden state (its pooler is built but not used)."""

    def __init__(self):
        super().__init__()
        t = models._transformers()
        cfg = t.BertConfig(vocab_size=32, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                           intermediate_size=64, max_position_embeddings=16, hidden_dropout_prob=0.0,
                           attention_probs_dropout_prob=0.0)
        self.bert = t.BertModel(cfg)
        self.cls = nn.Linear(32, 2)

    def forward(self, ids):
        return self.cls(self.bert(ids).last_hidden_state[:, 0])


@bug("pt20586_bert_pooler_unused", "no_gradient", step=0, needs=("transformers",))
def bert_pooler_unused(steps: int) -> Case:
    """A Hugging Face ``BertModel`` (tiny random config) classified from ``last_hidden_state[:, 0]``: the pooler
    is in the optimizer but its output never reaches the loss (the unused-parameter case of pytorch/pytorch pull
    #20586: every forward output derived from parameters must take part in the loss). bert.pooler.dense, from
    step 0."""
    model = BertCls()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    return watched(model, opt, _classify(model, opt, presence_batches()), steps,
                   param_modules(model, "bert.pooler"))


class ActorCritic(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Linear(64, 32)
        self.actor = nn.Linear(32, 10)
        self.critic = nn.Linear(32, 1)

    def forward(self, x):
        h = torch.tanh(self.body(x))
        return self.actor(h), self.critic(h)


@bug("release39_policy_loss_numpy", "no_gradient", step=0)
def policy_loss_numpy(steps: int) -> Case:
    """An actor-critic on digits whose policy-gradient term is built from ``log_prob.detach().numpy()`` (isayev/
    ReLeaSE issue #39, "Weights are not updating": the gradient of the layers came back as None): only the
    critic's loss reaches the parameters, so the actor head never gets a gradient. The actor, from step 0."""
    model = ActorCritic()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    batches = digit_batches()

    def step(t: int) -> None:
        x, y = next(batches)
        opt.zero_grad()
        logits, value = model(x)
        logp = F.log_softmax(logits, 1).gather(1, y[:, None]).squeeze(1)
        reward = torch.ones_like(logp)
        advantage = reward - value.squeeze(1)
        policy = -float((logp.detach().numpy() * advantage.detach().numpy()).mean())  # the bug
        (advantage.pow(2).mean() + policy).backward()
        opt.step()
    return watched(model, opt, step, steps, ["actor"])


@bug("hf3532_embedding_replaced_after_optimizer", "not_in_optimizer", step=0)
def embedding_replaced(steps: int) -> Case:
    """A byte-level LSTM language model whose token embedding is replaced by a larger one (new tokens) after the
    optimizer was built: the new table gets gradients, the optimizer still holds the old one. Reported for the
    Hugging Face language-model fine-tuning script (huggingface/transformers pull #3532, "Resizing embedding matrix
    before sending it to the optimizer": "my token embeddings were not being updated"). embed, from step 0."""
    model = models.ByteLM("lstm", hidden=32, vocab=128)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    old = model.embed
    model.embed = nn.Embedding(128 + 8, old.embedding_dim)  # the bug: resized after the optimizer was built
    with torch.no_grad():
        model.embed.weight[:128] = old.weight
    owned = {id(p) for g in opt.param_groups for p in g["params"]}
    batches = text_batches()

    def step(t: int) -> None:
        seq = next(batches)
        opt.zero_grad()
        models.lm_loss(model(seq[:, :-1]), seq[:, 1:]).backward()
        opt.step()
    return watched(model, opt, step, steps, modules_of(model, [p for p in model.parameters() if id(p) not in owned]))


class Tagger(nn.Module):
    """Embedding → bidirectional LSTM → per-token linear classifier."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(128, 16)
        self.lstm = nn.LSTM(16, 32, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(64, 128)

    def forward(self, ids):
        return self.fc(self.lstm(self.embed(ids))[0])


@bug("hvpnet5_fc_not_in_optimizer", "not_in_optimizer", step=0)
def tagger_fc_missing(steps: int) -> Case:
    """A BiLSTM tagger whose optimizer is built from hand-listed parameter groups that leave out the output layer
    (zjunlp/HVPNeT issue #5: "the parameters for crf and fc are not added to the optimizer"): fc gets gradients
    that nothing applies. fc, from step 0."""
    model = Tagger()
    opt = torch.optim.Adam([{"params": model.embed.parameters(), "lr": 1e-3},
                            {"params": model.lstm.parameters(), "lr": 1e-3}])  # the bug: no fc group
    batches = text_batches()

    def step(t: int) -> None:
        seq = next(batches)
        opt.zero_grad()
        models.lm_loss(model(seq[:, :-1]), seq[:, 1:]).backward()
        opt.step()
    return watched(model, opt, step, steps, ["fc"])


@bug("ultralytics2855_unassigned_params", "not_in_optimizer", step=0)
def unassigned_by_type(steps: int) -> Case:
    """A small ResNet whose optimizer groups are built by module type (convolution weights with weight decay,
    batch-norm weights and biases without) and so miss the classifier's weight (ultralytics/ultralytics pull
    #2855, "build_optimizer() assign all parameters": un-assigned parameters in the optimizer). fc, from step 0."""
    model = models.ResNet((8, 16))
    decay, no_decay = [], []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            decay.append(m.weight)
        elif isinstance(m, nn.BatchNorm2d):
            no_decay += [m.weight, m.bias]
        if isinstance(getattr(m, "bias", None), nn.Parameter) and not isinstance(m, nn.BatchNorm2d):
            no_decay.append(m.bias)  # the bug: nn.Linear's weight falls in no group
    opt = torch.optim.SGD([{"params": decay, "weight_decay": 5e-4}, {"params": no_decay, "weight_decay": 0.0}],
                          lr=0.05, momentum=0.9)
    owned = {id(p) for p in decay + no_decay}
    return watched(model, opt, _classify(model, opt, image_batches()), steps,
                   modules_of(model, [p for p in model.parameters() if id(p) not in owned]))
