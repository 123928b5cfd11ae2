"""Prometheus for real: Debian's prometheus scrapes a running worker every second with the
alert rules of deploy/prometheus/alerts.yml loaded, and the test reads the worker's metrics
back through Prometheus's HTTP API, sees an alert fire on the worker's real series (a dead
letter) and another when the worker stops, and checks that every rule reads only metrics the
worker exports (or Prometheus's own `up`)."""

import json
import sys
import time
import unittest
import uuid

import yaml

import ops_support as ops

RULES = ops.DEPLOY_DIR / "prometheus" / "alerts.yml"


def rules_without_for():
    """alerts.yml with every `for` removed, so that an alert fires at the first evaluation that
    matches: the expressions, labels and job are the real ones, only the waiting is gone."""
    doc = yaml.safe_load(RULES.read_text())
    for group in doc["groups"]:
        group["interval"] = "1s"
        for rule in group["rules"]:
            rule.pop("for", None)
    return yaml.safe_dump(doc, sort_keys=False)


def scrape_config(worker_port):
    return yaml.safe_dump({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": ["alerts.yml"],
        "scrape_configs": [{
            "job_name": "asset-worker",
            "static_configs": [{"targets": [f"127.0.0.1:{worker_port}"]}],
        }],
    })


class PrometheusScrapeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.nats = ops.PrivateNats()
        cls.addClassCleanup(cls.nats.close)
        cls.worker = ops.Worker(ops.worker_env(cls.nats))
        cls.addClassCleanup(cls.worker.close)
        cls.worker.wait_ready()
        cls.prometheus = ops.Prometheus(scrape_config(cls.worker.port),
                                        {"alerts.yml": rules_without_for()})
        cls.addClassCleanup(cls.prometheus.close)

    def value(self, expr):
        result = self.prometheus.query(expr)
        return float(result[0]["value"][1]) if result else None

    def wait_value(self, expr, predicate, timeout=20.0):
        v = ops.poll(lambda: (lambda x: x is not None and predicate(x))(self.value(expr)),
                     timeout)
        return v, self.value(expr)

    def firing(self):
        status, doc = self.prometheus.api("alerts")
        self.assertEqual(status, 200, doc)
        return {a["labels"]["alertname"]: a for a in doc["data"]["alerts"]
                if a["state"] == "firing"}

    def test_1_scrapes_the_worker_and_reads_its_metrics_back(self):
        ok, up = self.wait_value('up{job="asset-worker"}', lambda v: v == 1)
        self.assertTrue(ok, f"up is {up}; prometheus log:\n{self.prometheus.log()}")

        version = ops.run_version()
        info = self.prometheus.query("asset_worker_build_info")
        self.assertEqual(len(info), 1, info)
        self.assertEqual(info[0]["metric"]["version"], version)
        self.assertEqual(info[0]["metric"]["worker"], "ops-test")
        self.assertEqual(info[0]["metric"]["job"], "asset-worker")
        self.assertEqual(info[0]["value"][1], "1")

        before = self.value("asset_worker_messages_processed_total")
        self.assertIsNotNone(before)
        # A valid message for a device with no linked asset: processed and acked, nothing written.
        message = {"messageId": f"ops-{uuid.uuid4()}", "deviceId": f"ops-dev-{uuid.uuid4()}",
                   "organizationId": "ops-org", "timestamp": "2026-01-28T14:30:00Z",
                   "metrics": {"temperature": 25.5}}
        self.nats.publish("telemetry.normalized.v1", [json.dumps(message)])
        ok, after = self.wait_value("asset_worker_messages_processed_total",
                                    lambda v: v >= before + 1)
        self.assertTrue(ok, f"processed total stayed {after}; worker log:\n{self.worker.log()}")
        ok, no_links = self.wait_value("asset_worker_messages_no_links_total", lambda v: v >= 1)
        self.assertTrue(ok, no_links)
        # The histogram made it through Prometheus's parser with its buckets.
        ok, count = self.wait_value("asset_worker_processing_duration_seconds_count",
                                    lambda v: v >= 1)
        self.assertTrue(ok, count)
        buckets = self.prometheus.query("asset_worker_processing_duration_seconds_bucket")
        self.assertIn("+Inf", {b["metric"]["le"] for b in buckets})

    def test_2_rules_load_and_evaluate_on_real_series(self):
        # Prometheus loaded every rule of alerts.yml and evaluates each without an error.
        expected = {r["alert"] for g in yaml.safe_load(RULES.read_text())["groups"]
                    for r in g["rules"]}

        def evaluated():
            status, doc = self.prometheus.api("rules")
            rules = [r for g in doc["data"]["groups"] for r in g["rules"]]
            return rules if rules and all(r.get("lastEvaluation", "").startswith("20")
                                          for r in rules) else None
        rules = ops.poll(evaluated, 20)
        self.assertTrue(rules, "rules were never evaluated")
        self.assertEqual({r["name"] for r in rules}, expected)
        for r in rules:
            self.assertEqual(r["health"], "ok", r)

        # No dead letter yet: the DLQ alert stays quiet once the depth is known (0)...
        ok, depth = self.wait_value('asset_worker_dlq_depth{job="asset-worker"}',
                                    lambda v: v == 0, timeout=20)
        self.assertTrue(ok, f"dlq depth {depth}")
        time.sleep(2)  # two evaluations on the known depth
        firing = self.firing()
        for quiet in ("AssetWorkerDLQNotEmpty", "AssetWorkerDown", "AssetWorkerAbsent",
                      "AssetWorkerNotReady"):
            self.assertNotIn(quiet, firing)

        # ... and fires once an invalid message has gone to the DLQ.
        self.nats.publish("telemetry.normalized.v1", ['{"messageId": "ops-invalid"}'])
        fired = ops.poll(lambda: "AssetWorkerDLQNotEmpty" in self.firing(), 30, 0.5)
        self.assertTrue(fired, f"DLQ alert did not fire; alerts: {self.firing()}; "
                               f"worker log:\n{self.worker.log()}")
        alert = self.firing()["AssetWorkerDLQNotEmpty"]
        self.assertEqual(alert["labels"]["severity"], "warning")
        self.assertEqual(alert["annotations"]["summary"], "dead letters waiting in the DLQ: 1")

    def test_3_worker_down_fires_when_the_worker_stops(self):
        self.assertEqual(self.worker.stop(), 0, self.worker.log())
        fired = ops.poll(lambda: "AssetWorkerDown" in self.firing(), 20, 0.5)
        self.assertTrue(fired, f"alerts: {self.firing()}")
        self.assertEqual(self.firing()["AssetWorkerDown"]["labels"]["instance"],
                         f"127.0.0.1:{self.worker.port}")


class RuleMetricsTest(unittest.TestCase):
    """Every metric a rule reads is one the worker's /metrics exports, with a histogram read
    through its _bucket, _sum or _count series."""

    @classmethod
    def setUpClass(cls):
        cls.nats = ops.PrivateNats()
        cls.addClassCleanup(cls.nats.close)
        cls.worker = ops.Worker(ops.worker_env(cls.nats))
        cls.addClassCleanup(cls.worker.close)
        cls.worker.wait_ready()
        cls.families = ops.exported_families(cls.worker.metrics())

    def test_every_rule_reads_exported_metrics(self):
        doc = yaml.safe_load(RULES.read_text())
        used = set()
        for group in doc["groups"]:
            for rule in group["rules"]:
                names = ops.promql_metric_names(rule["expr"])
                self.assertTrue(names, f"no metric found in {rule['expr']}")
                for name in names:
                    used.add(name)
                    if name == "up":
                        continue  # Prometheus's own, per scrape target
                    ok, why = ops.series_name_ok(name, self.families)
                    self.assertTrue(ok, f"{rule.get('alert')}: {why}")
                if "histogram_quantile" in rule["expr"]:
                    self.assertIn("le", ops.grouping_labels(rule["expr"]), rule["expr"])
        # The rules cover what the issue asks for.
        for name in ("asset_worker_dlq_depth", "nats_stream_messages_pending",
                     "asset_worker_errors_total",
                     "asset_worker_processing_duration_seconds_bucket", "up"):
            self.assertIn(name, used)

    def test_the_check_rejects_what_the_worker_does_not_export(self):
        for name in ("asset_worker_processing_duration_seconds",      # histogram, bare
                     "asset_worker_processing_duration_ms_bucket",    # summary has no buckets
                     "asset_worker_messages_processed_total_bucket",  # counter
                     "asset_worker_messages_processed"):              # not a metric
            self.assertFalse(ops.series_name_ok(name, self.families)[0], name)
        self.assertTrue(ops.series_name_ok("asset_worker_processing_duration_ms_count",
                                           self.families)[0])
        self.assertEqual(self.families.get("asset_worker_batch_size"), "histogram")


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
