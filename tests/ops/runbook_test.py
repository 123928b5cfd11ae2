"""docs/runbook.md says only what exists: every `asset-worker` command it gives is a command of
the binary with options the binary takes, every setting it names is one `--help` lists, every
metric it names is one a running worker exports, every file under deploy/ it names is there,
the Kubernetes objects its kubectl commands name are the manifests' own, and its internal
links lead to its own sections."""

import re
import subprocess
import sys
import unittest

import yaml

import ops_support as ops

RUNBOOK = ops.SOURCE_DIR / "docs" / "runbook.md"


def code_texts(text, skip=()):
    """Inline code spans and the lines of fenced code blocks (except blocks of a language in
    `skip`)."""
    texts, block, lang = [], None, ""
    for line in text.splitlines():
        if line.strip().startswith("```"):
            if block is None:
                block, lang = [], line.strip()[3:]
            else:
                if lang not in skip:
                    texts.extend(block)
                block = None
            continue
        if block is not None:
            block.append(line)
    # Inline spans may wrap over a line break inside a paragraph.
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    texts += [m.replace("\n", " ") for m in re.findall(r"`([^`]+)`", prose)]
    return texts


def asset_worker_commands(text):
    """(subcommand words, options) of every `asset-worker ...` command in code."""
    commands = []
    for t in code_texts(text):
        for m in re.finditer(r"(?:^|[\s(])asset-worker((?: +[^\s`|;&)]+)*)", t):
            words, options, in_words = [], [], True
            for w in m.group(1).split():
                if w.startswith("--"):
                    options.append(w.split("=")[0])
                    in_words = False
                elif in_words and re.fullmatch(r"[a-z][a-z-]*", w):
                    words.append(w)
                else:
                    in_words = False  # a placeholder (SEQ..., ORG) or an option's value
            commands.append((tuple(words), tuple(options)))
    return commands


def help_text(words):
    r = subprocess.run([ops.worker_binary(), *words, "--help"], env=ops.base_env(),
                       capture_output=True, text=True, timeout=10)
    return r.returncode, r.stdout


class RunbookTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.text = RUNBOOK.read_text()
        cls.global_help = help_text([])[1]
        cls.env_names = set(re.findall(r"\(Env:([A-Z0-9_]+)\)", cls.global_help))

    def test_every_asset_worker_command_exists(self):
        commands = set(asset_worker_commands(self.text))
        subcommands = {c[0] for c in commands}
        for needed in (("migrate",), ("dlq", "list"), ("dlq", "show"), ("dlq", "replay"),
                       ("dlq", "purge"), ("links", "invalidate"), ("formulas", "check"),
                       ("formulas", "try"), ("storage", "history-partitions"),
                       ("storage", "assets-fillfactor")):
            self.assertIn(needed, subcommands, "the runbook should say how to use it")
        for words, options in sorted(commands):
            with self.subTest(command=" ".join(("asset-worker",) + words + options)):
                code, out = help_text(words)
                self.assertEqual(code, 0)
                usage = re.search(r"Usage: \S*asset-worker((?: [a-z][a-z-]*)*)", out)
                self.assertIsNotNone(usage, out)
                self.assertEqual(usage.group(1).split(), list(words), "no such subcommand")
                for o in options:
                    known = out + self.global_help
                    self.assertTrue(re.search(rf"(^|[\s,]){re.escape(o)}\b", known),
                                    f"{o} is not an option of asset-worker {' '.join(words)}")

    def test_the_command_check_can_fail(self):
        _, out = help_text(["dlq", "rewind"])
        usage = re.search(r"Usage: \S*asset-worker((?: [a-z]+)*)", out)
        self.assertNotEqual(usage and usage.group(1).split(), ["dlq", "rewind"])

    def test_every_setting_named_is_one_the_binary_takes(self):
        self.assertIn("NATS_DURABLE", self.env_names)
        for t in code_texts(self.text, skip=("sql",)):
            for name in re.findall(r"\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b", t):
                if name.startswith("TELEMETRY_"):
                    continue  # stream names
                with self.subTest(name=name):
                    self.assertIn(name, self.env_names)

    def test_every_metric_named_is_exported(self):
        nats = ops.PrivateNats()
        self.addCleanup(nats.close)
        worker = ops.Worker(ops.worker_env(nats))
        self.addCleanup(worker.close)
        worker.wait_ready()
        families = ops.exported_families(worker.metrics())
        names = set(re.findall(r"\b(?:asset_worker|nats_stream)_[a-z0-9_]+", self.text))
        self.assertGreater(len(names), 3)
        for name in names:
            with self.subTest(metric=name):
                self.assertTrue(ops.series_name_ok(name, families)[0] or
                                families.get(name) == "histogram", name)

    def test_every_deploy_file_named_exists(self):
        # Files, not kubectl's `deploy/NAME` (exec, logs, port-forward).
        paths = set(re.findall(r"(?<![\w/-])(?<!exec )(?<!logs )(?<!port-forward )"
                               r"deploy/[\w./-]*[\w/]", self.text))
        self.assertGreater(len(paths), 5)
        for p in paths:
            with self.subTest(path=p):
                self.assertTrue((ops.SOURCE_DIR / p).exists())

    def test_kubectl_commands_name_the_manifests_objects(self):
        objects = {}
        for path in (ops.DEPLOY_DIR / "k8s").glob("*.yaml"):
            for doc in yaml.safe_load_all(path.read_text()):
                if doc and "metadata" in doc:
                    objects.setdefault(doc["kind"].lower(), set()).add(doc["metadata"]["name"])
        deployment = yaml.safe_load((ops.DEPLOY_DIR / "k8s" / "deployment.yaml").read_text())
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        secret = yaml.safe_load((ops.DEPLOY_DIR / "k8s" / "secret.yaml").read_text())
        kubectl = [t for t in code_texts(self.text) if "kubectl" in t]
        self.assertGreater(len(kubectl), 5)
        for t in kubectl:
            with self.subTest(command=t):
                for kind, name in re.findall(r"\b(deployment|job)/([a-z0-9-]+)", t):
                    self.assertIn(name, objects.get(kind, set()))
                for kind, name in re.findall(r"\b(deployment|job) ([a-z0-9-]+)\b", t):
                    if name not in ("asset-worker", "asset-worker-migrate"):
                        continue
                    self.assertIn(name, objects.get(kind, set()))
                for key, value in re.findall(r"-l ([\w./-]+)=([\w-]+)", t):
                    self.assertEqual(pod_labels.get(key), value)
                m = re.search(r"create secret generic ([a-z0-9-]+)", t)
                if m:
                    self.assertEqual(m.group(1), secret["metadata"]["name"])
                for key in re.findall(r"--from-literal=([A-Z_]+)=", t):
                    self.assertIn(key, secret["stringData"])

    def test_internal_links_lead_to_sections(self):
        anchors = ops.markdown_anchors(RUNBOOK)
        links = re.findall(r"\]\(#([^)]+)\)", self.text)
        self.assertGreater(len(links), 5)
        for a in links:
            with self.subTest(anchor=a):
                self.assertIn(a, anchors)
        for section in ("deploy", "stop-restart-scale", "read-the-dashboard", "replay-the-dlq",
                        "change-a-formula-safely", "change-a-link-safely"):
            self.assertIn(section, anchors)


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
