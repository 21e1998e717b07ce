"""neurostack: spiking audio classifiers from training to NIR to an event-driven simulator.

Data flows one way: data -> model (frontend) -> NIR -> lowering -> kernels -> counters -> report.
Importing this package stays light: submodules are imported where they are used.
"""

__version__ = "0.1.0"
