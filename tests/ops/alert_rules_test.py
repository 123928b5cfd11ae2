"""deploy/prometheus/: the alert rules pass `promtool check rules`, their unit tests pass
`promtool test rules` and show every alert both firing and not firing, every alert has a
severity, a summary and a runbook_url whose section exists in docs/runbook.md, and the example
scrape configuration passes `promtool check config`."""

import subprocess
import sys
import tempfile
import unittest

import yaml

import ops_support as ops

PROMETHEUS_DIR = ops.DEPLOY_DIR / "prometheus"
RULES = PROMETHEUS_DIR / "alerts.yml"
RULE_TESTS = PROMETHEUS_DIR / "alerts_test.yml"
RUNBOOK = ops.SOURCE_DIR / "docs" / "runbook.md"
SEVERITIES = {"critical", "warning", "info"}


def alerts():
    doc = yaml.safe_load(RULES.read_text())
    return [r for g in doc["groups"] for r in g["rules"] if "alert" in r]


def promtool(*args):
    return subprocess.run([ops.program("promtool"), *args], capture_output=True, text=True,
                          timeout=60, cwd=PROMETHEUS_DIR)


class AlertRulesTest(unittest.TestCase):
    def test_promtool_check_rules(self):
        r = promtool("check", "rules", str(RULES))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn(f"SUCCESS: {len(alerts())} rules found", r.stdout)

    def test_promtool_unit_tests_pass(self):
        r = promtool("test", "rules", str(RULE_TESTS))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("SUCCESS", r.stdout)

    def test_unit_tests_show_each_alert_firing_and_not_firing(self):
        doc = yaml.safe_load(RULE_TESTS.read_text())
        self.assertEqual([str(p) for p in doc["rule_files"]], ["alerts.yml"])
        fires, silent = set(), set()
        for case in doc["tests"]:
            for check in case.get("alert_rule_test", []):
                (fires if check.get("exp_alerts") else silent).add(check["alertname"])
        names = {a["alert"] for a in alerts()}
        self.assertEqual(names - fires, set(), "alerts never shown firing")
        self.assertEqual(names - silent, set(), "alerts never shown not firing")
        self.assertEqual((fires | silent) - names, set(), "tests of alerts that do not exist")

    def test_each_alert_has_severity_summary_and_runbook_section(self):
        anchors = ops.markdown_anchors(RUNBOOK)
        names = [a["alert"] for a in alerts()]
        self.assertEqual(len(names), len(set(names)), "an alert name is used twice")
        expected = {"AssetWorkerDown", "AssetWorkerAbsent", "AssetWorkerDLQNotEmpty",
                    "AssetWorkerDLQGrowing", "AssetWorkerBacklogGrowing", "AssetWorkerErrorRate",
                    "AssetWorkerProcessingLatencyHigh"}
        self.assertLessEqual(expected, set(names), "an alert the issue asks for is missing")
        for a in alerts():
            with self.subTest(alert=a["alert"]):
                self.assertIn(a.get("labels", {}).get("severity"), SEVERITIES)
                ann = a.get("annotations", {})
                self.assertTrue(ann.get("summary"), "no summary")
                url = ann.get("runbook_url", "")
                path, _, anchor = url.partition("#")
                self.assertEqual(path, "docs/runbook.md")
                self.assertEqual(anchor, a["alert"].lower(), "the section is named for the alert")
                self.assertIn(anchor, anchors, f"docs/runbook.md has no section #{anchor}")

    def test_rules_read_the_job_the_scrape_config_names(self):
        config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
        jobs = {j["job_name"] for j in config["scrape_configs"]}
        self.assertEqual(jobs, {"asset-worker"})
        for a in alerts():
            with self.subTest(alert=a["alert"]):
                self.assertIn('job="asset-worker"', a["expr"])

    def test_promtool_check_config(self):
        r = promtool("check", "config", str(PROMETHEUS_DIR / "prometheus.yml"))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_promtool_finds_a_broken_rule(self):
        # The checks above can fail: the same promtool rejects a rule file with a bad expression.
        broken = RULES.read_text().replace("== 0", "== = 0", 1)
        with tempfile.NamedTemporaryFile("w", suffix=".yml") as f:
            f.write(broken)
            f.flush()
            r = promtool("check", "rules", f.name)
        self.assertNotEqual(r.returncode, 0, r.stdout)


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
