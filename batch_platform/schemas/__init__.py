"""The Pandera models and the declarations of the lake tables, one module per layer.

`batch_platform.tables` lists them all by asset key.
"""
