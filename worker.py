"""`python worker.py`: the redrive worker (its code is `redrive/worker.py`, installed as `redrive.worker`)."""

from redrive.worker import main

if __name__ == "__main__":
    main()
