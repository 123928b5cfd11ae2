"""docs/configuration.md matches the binary: every setting `asset-worker --help` lists is a row
of the settings table with the same flag, environment variable and default, every row is a
setting the binary has, and every command of the binary is in the commands table."""

import re
import subprocess
import unittest

import ops_support as ops

DOC = ops.SOURCE_DIR / "docs" / "configuration.md"


def help_of(*words):
    r = subprocess.run([ops.worker_binary(), *words, "--help"], env=ops.base_env(),
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    return r.stdout


def help_settings():
    """{flag: (env, default or '')} from the top-level --help."""
    settings = {}
    for m in re.finditer(r"^\s+(--[a-z0-9-]+) [A-Z]+(?:=(\S+))? \(Env:([A-Z0-9_]+)\)",
                         help_of(), re.M):
        settings[m.group(1)] = (m.group(3), m.group(2) or "")
    return settings


def doc_settings():
    """{flag: (env, default)} from the settings table (`empty` and prose defaults as '')."""
    settings = {}
    for line in DOC.read_text().splitlines():
        m = re.match(r"^\| `(--[a-z0-9-]+)` \| `([A-Z0-9_]+)` \| ([^|]+) \|", line)
        if m:
            default = m.group(3).strip()
            default = default[1:-1] if default.startswith("`") else ""
            settings[m.group(1)] = (m.group(2), default)
    return settings


def subcommands(words=()):
    """Every leaf command path of the binary, from the Subcommands part of each --help."""
    text = help_of(*words)
    part = text.split("Subcommands:", 1)
    if len(part) < 2:
        return [words]
    out = []
    for m in re.finditer(r"^\s{2}([a-z][a-z-]*)\s", part[1], re.M):
        out += subcommands(words + (m.group(1),))
    return out


class ConfigurationDoc(unittest.TestCase):
    def test_every_setting_matches_help(self):
        from_help, from_doc = help_settings(), doc_settings()
        self.assertGreater(len(from_help), 20, "--help was not parsed")
        self.assertEqual(sorted(from_help), sorted(from_doc))
        for flag, (env, default) in from_help.items():
            self.assertEqual(from_doc[flag][0], env, flag)
            self.assertEqual(from_doc[flag][1], default, flag)

    def test_every_command_is_documented(self):
        commands = [" ".join(c) for c in subcommands()]
        self.assertIn("dlq replay", commands)
        self.assertIn("formulas try", commands)
        text = DOC.read_text()
        for c in commands:
            self.assertIn(f"`asset-worker {c}", text, c)


if __name__ == "__main__":
    unittest.main(verbosity=2)
