"""The unpacked BiLSTM computes exactly what a packed bidirectional nn.LSTM computes."""

import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from htr_ssl.models.bilstm import BiLSTM, reverse_within_length


def test_reverse_within_length():
    x = torch.arange(8.0).view(2, 4, 1)
    out = reverse_within_length(x, torch.tensor([4, 2]))
    assert out[:, :, 0].tolist() == [[3, 2, 1, 0], [5, 4, 6, 7]]


def test_matches_packed_bidirectional_lstm():
    torch.manual_seed(0)
    ours = BiLSTM(5, 7, layers=2)
    ref = torch.nn.LSTM(5, 7, 2, batch_first=True, bidirectional=True)
    with torch.no_grad():
        for layer in range(2):
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(ref, f"{name}_l{layer}").copy_(getattr(ours.fwd[layer], f"{name}_l0"))
                getattr(ref, f"{name}_l{layer}_reverse").copy_(
                    getattr(ours.bwd[layer], f"{name}_l0"))
    x = torch.randn(3, 6, 5)
    lengths = torch.tensor([6, 3, 1])
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    expected, _ = pad_packed_sequence(ref(packed)[0], batch_first=True, total_length=6)
    torch.testing.assert_close(ours(x, lengths), expected, atol=1e-6, rtol=1e-5)
