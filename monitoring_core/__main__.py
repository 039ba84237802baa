import signal
import sys

from .cli import main

if hasattr(signal, "SIGPIPE"):  # `python -m monitoring_core ... | head` ends quietly, as other commands do
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
sys.exit(main())
