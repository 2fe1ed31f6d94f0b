"""The SB-8-7 embedded default stack (see stack/embedded.py); `python -m stack up` runs it."""

from stack.embedded import Stack, default_home
from stack.ports import free_ports
from stack.procs import StackError
from stack.smtp_sink import read_mail

__all__ = ["Stack", "StackError", "default_home", "free_ports", "read_mail"]
