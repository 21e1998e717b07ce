"""Models (Norse/PyTorch) and the bridge between them and NIR.

- `functional`: neuron equations as pure functions of (input, state, parameters).
- `layers`: thin `nn.Module` wrappers that run those equations over a whole time sequence.
- `models`: the spiking classifiers (`mlp`, `csnn`, `spikformer`, `adlif`, `delay`) as ordered stages named after
  their NIR nodes.
- `nir_export`: a trained model -> a NIR graph written to the NIR spec (`nir_spikformer`: the Spikformer, with one
  neurostack.SpikingSelfAttention extension node per block).
- `nir_import`: a NIR graph -> a PyTorch module with the spec semantics the simulator uses (for comparison).
"""
