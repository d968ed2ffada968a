"""The DeepInfant V2 CRNN, as the Swift engine runs it (see docs/model-format.md).

Input: normalised log-mel features, shape [batch, 1, n_mels, frames].
N conv blocks (conv 3x3 pad 1 -> batch norm -> ReLU -> max-pool 2x2 -> dropout), two stacked LSTM
layers over time (PyTorch gate order i, f, g, o), a pooled state ("last" hidden state or "mean" over
time), dense layers with ReLU, a final linear layer; softmax is applied outside (logits out).
"""
from __future__ import annotations

import torch
from torch import nn


class ConvBlock(nn.Module):
    def __init__(self, cin: int, cout: int, dropout: float):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel_size=3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.pool = nn.MaxPool2d(2)
        self.drop = nn.Dropout(dropout)

    def forward(self, x):
        return self.drop(self.pool(torch.relu(self.bn(self.conv(x)))))


class CRNN(nn.Module):
    def __init__(self, n_mels: int, n_classes: int, conv_channels=(32, 64, 128), lstm_hidden: int = 128,
                 dense=(64,), dropout: float = 0.3, pooling: str = "mean"):
        super().__init__()
        assert pooling in ("last", "mean")
        self.arch = dict(type="crnn", conv_channels=list(conv_channels), kernel=3, pool=2,
                         lstm_hidden=lstm_hidden, lstm_layers=2, pooling=pooling, dense=list(dense),
                         n_mels=n_mels, n_classes=n_classes)
        chans = [1, *conv_channels]
        self.blocks = nn.ModuleList(ConvBlock(a, b, dropout) for a, b in zip(chans[:-1], chans[1:]))
        freq = n_mels
        for _ in conv_channels:
            freq //= 2
        self.lstm = nn.LSTM(conv_channels[-1] * freq, lstm_hidden, num_layers=2, batch_first=True,
                            dropout=dropout)
        dims = [lstm_hidden, *dense]
        self.dense = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(dims[-1], n_classes)
        self.pooling = pooling

    def forward(self, x):  # x: [B, 1, n_mels, T]
        for b in self.blocks:
            x = b(x)
        bsz, c, f, t = x.shape
        x = x.permute(0, 3, 1, 2).reshape(bsz, t, c * f)  # time-major sequence, feature index = c*F + f
        y, _ = self.lstm(x)
        h = y[:, -1] if self.pooling == "last" else y.mean(dim=1)
        for d in self.dense:
            h = self.drop(torch.relu(d(h)))
        return self.out(h)
