#!/usr/bin/python3
"""Run a selection of Tempest's tests and print one JSON line per test.

Usage: tempest-run.py SELECTION

TEMPEST_CONFIG_DIR and TEMPEST_CONFIG name the tempest.conf. SELECTION
has one test per line (module.Class.test_method, then words the caller
reads); '#' starts a comment. The tests run in the order given, one
unittest suite, so tests of one class share its setUpClass as under
Tempest's own runner. Each line printed is {"test", "status", "detail"}
with status pass, fail or skip; a test whose class could not be set up
fails with the class's error.
"""
import json
import re
import sys
import traceback
import unittest


def short(err):
    """The exception, on one line: its type and the start of its text.
    testtools wraps a test's exception in one whose text is the test's
    log and then the traceback: that traceback's last lines."""
    text = "".join(traceback.format_exception_only(err[0], err[1])).strip()
    if "Traceback (most recent call last):" in text:
        tb = text.rsplit("Traceback (most recent call last):", 1)[1]
        text = " ".join(l for l in tb.splitlines() if l.strip() and not l.startswith(" "))
    return re.sub(r"\s+", " ", text)[:400]


def name_of(test):
    tid = test.id()
    return re.sub(r"\[.*\]$", "", tid)


class Result(unittest.TestResult):
    def __init__(self):
        super().__init__()
        self.out = {}
        self.class_errors = {}

    def addSuccess(self, test):
        self.out[name_of(test)] = ("pass", "")

    def addFailure(self, test, err):
        self.out[name_of(test)] = ("fail", short(err))

    def addError(self, test, err):
        if isinstance(test, unittest.suite._ErrorHolder):
            m = re.search(r"\((.*)\)", test.description)
            self.class_errors[m.group(1) if m else test.description] = short(err)
            return
        self.out[name_of(test)] = ("fail", short(err))

    def addSkip(self, test, reason):
        if isinstance(test, unittest.suite._ErrorHolder):
            m = re.search(r"\((.*)\)", test.description)
            self.class_errors[m.group(1) if m else test.description] = "skip: " + str(reason)
            return
        self.out[name_of(test)] = ("skip", str(reason))

    def addExpectedFailure(self, test, err):
        self.out[name_of(test)] = ("fail", "expected failure: " + short(err))

    def addUnexpectedSuccess(self, test):
        self.out[name_of(test)] = ("pass", "unexpected success")


def main():
    names = []
    with open(sys.argv[1]) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                names.append(line.split()[0])
    loader = unittest.TestLoader()
    suite = unittest.TestSuite()
    for n in names:
        suite.addTests(loader.loadTestsFromName(n))
    result = Result()
    suite.run(result)
    for n in names:
        status, detail = result.out.get(n, (None, None))
        if status is None:
            cls = n.rsplit(".", 1)[0]
            err = result.class_errors.get(cls, "not run")
            if err.startswith("skip: "):
                status, detail = "skip", err[len("skip: "):]
            else:
                status, detail = "fail", "class setup: " + err
        print(json.dumps({"test": n, "status": status, "detail": detail}), flush=True)


if __name__ == "__main__":
    main()
