"""GPU kernels (Triton), one module per op; imported only by the backends that use them.

- `infonorm.kernels.layer_norm`: layer norm + activation, forward and backward, statistics
  per position or over the whole layer (kernels in `_layer_norm_position`,
  `_layer_norm_split`; the activations σ, σ' in `_activation`; block sizes and grids from a
  `Tuning` in `_layer_norm_config`).
- `_launch`: how a kernel is launched (Triton's path, or a direct call of the compiled
  kernel for a specialization already seen).

Nothing here is imported on CPU-only paths: importing a kernel module imports triton. On a
machine without CUDA the kernels run on CPU tensors under Triton's interpreter, which must
be switched on (TRITON_INTERPRET=1) before the first kernel module is imported.
"""
