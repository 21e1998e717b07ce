"""`python -m neurostack` runs the command line (also what `torchrun -m neurostack` needs)."""

from neurostack.cli import main

if __name__ == "__main__":
    main()
