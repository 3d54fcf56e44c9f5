"""One BSRNN layer (time path, then band path) as a standalone block."""
import torch

from espnet2.enh.layers.bsrnn import choose_norm


class BandSplitRNNBlock(torch.nn.Module):
    """A band-sequence RNN layer over band-split features, with residual paths.

    ESPnet's ``BSRNN`` runs its layers and its mask decoder inside one forward with
    a fixed number of outputs, so USE cannot insert the query conditioning between
    them; this block is one of those layers on its own (same structure: norm,
    (B)LSTM over time per band, linear, residual; then norm, BLSTM over bands per
    frame, linear, residual), so the separator can stack them before and after the
    conditioning point.

    Args:
        channels: embedding size N of each (frame, band) cell.
        norm_type: ESPnet normalisation name (``GN``, ``cLN``, ``cfLN``, ``BN``).
        causal: LSTM over time instead of BLSTM.

    References:
        J. Yu, Y. Luo, "Efficient monaural speech enhancement with universal sample
        rate band-split RNN", ICASSP 2023.
    """

    def __init__(self, channels: int, norm_type: str = "GN", causal: bool = False):
        super().__init__()
        hidden = 2 * channels
        self.norm_time = choose_norm(norm_type, channels)
        self.rnn_time = torch.nn.LSTM(
            channels, hidden, batch_first=True, bidirectional=not causal
        )
        self.fc_time = torch.nn.Linear(hidden if causal else 2 * hidden, channels)
        self.norm_band = choose_norm(norm_type, channels)
        self.rnn_band = torch.nn.LSTM(
            channels, hidden, batch_first=True, bidirectional=True
        )
        self.fc_band = torch.nn.Linear(2 * hidden, channels)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Args: z [B, N, T, K] (T frames, K bands). Returns [B, N, T, K]."""
        B, N, T, K = z.shape
        out = self.norm_time(z).permute(0, 3, 2, 1).reshape(B * K, T, N)  # [B*K, T, N]
        out = self.fc_time(self.rnn_time(out)[0])
        z = z + out.reshape(B, K, T, N).permute(0, 3, 2, 1)  # [B, N, T, K]
        out = self.norm_band(z).permute(0, 2, 3, 1).reshape(B * T, K, N)  # [B*T, K, N]
        out = self.fc_band(self.rnn_band(out)[0])
        return z + out.reshape(B, T, K, N).permute(0, 3, 1, 2)  # [B, N, T, K]
