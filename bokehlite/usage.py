"""The argument parser of every command line: a usage error is one line and exit 2.

argparse's own answer to a bad option is its whole usage block and then the error, which
for a command with twenty options buries the one line that matters. Every command here
says what was wrong, and where the help is, in one line on stderr instead.
"""
from __future__ import annotations

import argparse
import sys

EXIT_USAGE = 2


class OneLineParser(argparse.ArgumentParser):
    def error(self, message):
        print(f"{self.prog}: error: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)
