"""EnCodec 32 kHz through `transformers`: the architecture a checkpoint's pointer names, and the
three operations JASCO needs (first-codebook drum codes, their codebook vectors, decoding).

The weights never come from the hub: every released `state_dict.bin` embeds a full EnCodec copy
under `condition_provider.conditioners.self_wav.compression_model.model.`, and that copy is what
the reference decodes with. Only the *architecture* is looked up from the pointer name.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from engine.errors import CheckpointError

ENCODEC_32KHZ = "facebook/encodec_32khz"

# The facebook/encodec_32khz configuration (transformers' conversion values), so that released
# models load without the hub config being cached.
_ENCODEC_32KHZ_CONFIG = {
    "target_bandwidths": [2.2],
    "sampling_rate": 32000,
    "audio_channels": 1,
    "normalize": False,
    "chunk_length_s": None,
    "overlap": None,
    "hidden_size": 128,
    "num_filters": 64,
    "num_residual_layers": 1,
    "upsampling_ratios": [8, 5, 4, 4],
    "norm_type": "weight_norm",
    "kernel_size": 7,
    "last_kernel_size": 7,
    "residual_kernel_size": 3,
    "dilation_growth_rate": 2,
    "use_causal_conv": False,
    "pad_mode": "reflect",
    "compress": 2,
    "num_lstm_layers": 2,
    "trim_right_ratio": 1.0,
    "codebook_size": 2048,
    "codebook_dim": None,
    "use_conv_shortcut": False,
}


def encodec_config(pointer: str, checkpoint_dir: Path):  # -> transformers.EncodecConfig
    """The EncodecConfig a compression pointer names.

    Looked up, in order: a folder of that name beside the checkpoint, a local folder, the known
    `facebook/encodec_32khz` values, the Hugging Face cache (never the network).
    """
    from transformers import EncodecConfig

    for folder in (checkpoint_dir / pointer, Path(pointer)):
        if (folder / "config.json").is_file():
            return EncodecConfig(**_read_json(folder / "config.json"))
    if pointer == ENCODEC_32KHZ:
        return EncodecConfig(**_ENCODEC_32KHZ_CONFIG)
    try:
        from huggingface_hub import hf_hub_download

        cached = hf_hub_download(pointer, "config.json", local_files_only=True)
    except (OSError, ValueError) as exc:  # the hub's not-cached / bad-name errors
        raise CheckpointError(
            f"compression model {pointer!r}: no folder {checkpoint_dir / pointer} and no cached "
            f"config in the Hugging Face cache ({exc}). Put the EnCodec folder beside the "
            "checkpoint or run `jasco-bridge weights download`"
        ) from exc
    return EncodecConfig(**_read_json(Path(cached)))


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read EnCodec config {path}: {exc}") from exc
    # Keys transformers writes for bookkeeping, not architecture.
    for key in ("architectures", "model_type", "transformers_version", "dtype", "torch_dtype"):
        data.pop(key, None)
    return data


class CompressionModel(nn.Module):
    """Holds the EnCodec model under `.model` (the state-dict prefix the checkpoints use)."""

    def __init__(self, config) -> None:  # config: transformers.EncodecConfig
        super().__init__()
        from transformers import EncodecModel

        self.model = EncodecModel(config).eval()

    @property
    def latent_dim(self) -> int:
        return int(self.model.config.hidden_size)

    def first_codebook_codes(self, wav: torch.Tensor) -> torch.Tensor:
        """wav [N, 1, samples] at 32 kHz -> nearest codeword of the coarsest codebook [N, T]."""
        latents = self.model.encoder(wav)  # [N, C, T]
        return self.model.quantizer.layers[0].encode(latents)  # [N, T] int64

    def codebook_vectors(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [N, T] of the first codebook -> their codebook vectors [N, C, T]."""
        return self.model.quantizer.decode(codes[None])

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Un-normalised continuous latents [N, T, C] -> audio [N, 1, T * hop]."""
        return self.model.decoder(latents.transpose(1, 2))
