"""The pass/fail count that the peer checks in scripts/ (peers.py, model_check.py,
pyblp_check.py) keep, and the line and exit status they end on."""

import sys


class Tally:
    def __init__(self, name):
        self.name, self.passed, self.failed = name, 0, 0

    def check(self, ok, what):
        """Counts one check; prints `FAIL what` when it failed. Returns ok."""
        if ok:
            self.passed += 1
        else:
            self.failed += 1
            print(f"FAIL {what}")
        return ok

    def finish(self):
        """Prints `NAME: N passed, M failed` and exits 1 when a check failed or none was made."""
        print(f"{self.name}: {self.passed} passed, {self.failed} failed")
        if self.passed + self.failed == 0:
            print(f"{self.name}: checked 0 values: nothing was compared with the peers")
        sys.exit(1 if self.failed or self.passed == 0 else 0)
