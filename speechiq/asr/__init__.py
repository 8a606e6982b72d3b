"""Speech recognition: model resolution, batched short-window decoding, the shared scheduler."""
