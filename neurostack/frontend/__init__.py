"""Models (Norse/PyTorch) and the bridge between them and NIR.

- `functional`: neuron equations as pure functions of (input, state, parameters).
- `layers`: thin `nn.Module` wrappers that run those equations over a whole time sequence.
- `models`: the spiking classifiers (`mlp`, `csnn`) as ordered stages, each of which maps to one NIR node.
- `nir_export`: a trained model -> a NIR graph written to the NIR spec.
- `nir_import`: a NIR graph -> a PyTorch module with the spec semantics the simulator uses (for comparison).
"""
