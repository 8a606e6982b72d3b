"""Audio plumbing: G.711/PCM codecs, resampling to 16 kHz, WAV files."""

from .codecs import decode, deinterleave, encode, encode_alaw, encode_mulaw, to_float32, to_int16
from .resample import StreamResampler, resample
from .wavio import WavAudio, read_wav, wav_bytes, write_wav

__all__ = [
    "StreamResampler",
    "WavAudio",
    "decode",
    "deinterleave",
    "encode",
    "encode_alaw",
    "encode_mulaw",
    "read_wav",
    "resample",
    "to_float32",
    "to_int16",
    "wav_bytes",
    "write_wav",
]
