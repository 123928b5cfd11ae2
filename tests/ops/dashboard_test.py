"""deploy/grafana/asset-worker-dashboard.json: every metric a panel or a template variable
queries is one a running worker's /metrics exports (histograms through _bucket, _sum and
_count, quantiles by `le`); every query is valid PromQL for Prometheus; the panels cover what
an operator needs (throughput, latency quantiles, cache hit rate by tier, errors by type,
pending and ack pending, DLQ depth, batch size, replicas up); and every panel uses the
dashboard's Prometheus data-source variable."""

import json
import re
import sys
import unittest

import ops_support as ops

DASHBOARD = ops.DEPLOY_DIR / "grafana" / "asset-worker-dashboard.json"


def all_panels(panels):
    for p in panels:
        yield p
        yield from all_panels(p.get("panels", []))


def load():
    return json.loads(DASHBOARD.read_text())


def panel_queries(doc):
    """(panel title, expr) of every query target of every panel, rows' nested panels included."""
    for p in all_panels(doc["panels"]):
        for t in p.get("targets", []):
            yield p["title"], t.get("expr", "")


def variable_queries(doc):
    for v in doc["templating"]["list"]:
        if v["type"] != "query":
            continue
        q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
        m = re.fullmatch(r"label_values\((.*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)", q.strip())
        assert m, f"variable {v['name']}: unexpected query {q}"
        yield v["name"], m.group(1), m.group(2)


class DashboardTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.doc = load()
        cls.nats = ops.PrivateNats()
        cls.addClassCleanup(cls.nats.close)
        cls.worker = ops.Worker(ops.worker_env(cls.nats))
        cls.addClassCleanup(cls.worker.close)
        cls.worker.wait_ready()
        cls.families = ops.exported_families(cls.worker.metrics())

    def test_families_come_from_the_running_worker(self):
        # The list checked against is the worker's own, not one written down here.
        self.assertEqual(self.families.get("asset_worker_processing_duration_seconds"),
                         "histogram")
        self.assertEqual(self.families.get("asset_worker_processing_duration_ms"), "summary")
        self.assertEqual(self.families.get("asset_worker_messages_processed_total"), "counter")
        self.assertGreater(len(self.families), 20)

    def test_every_queried_metric_is_exported(self):
        queries = list(panel_queries(self.doc))
        self.assertGreater(len(queries), 20)
        used = set()
        for title, expr in queries:
            with self.subTest(panel=title, expr=expr):
                self.assertTrue(expr.strip(), "a target without expr")
                names = ops.promql_metric_names(expr)
                self.assertTrue(names, "no metric found")
                for name in names:
                    used.add(name)
                    if name == "up":
                        continue  # Prometheus's own, per scrape target
                    ok, why = ops.series_name_ok(name, self.families)
                    self.assertTrue(ok, why)
                if "histogram_quantile" in expr:
                    self.assertIn("le", ops.grouping_labels(expr))
                    for name in names:
                        self.assertTrue(name.endswith("_bucket"), f"{name} in a quantile")
        for _, selector, label in variable_queries(self.doc):
            for name in ops.promql_metric_names(selector):
                self.assertTrue(ops.series_name_ok(name, self.families)[0], name)
            self.assertIn(label, {"job", "instance"})
        self.assertGreater(len(used), 20)

    def test_panels_cover_what_an_operator_needs(self):
        exprs = [e for _, e in panel_queries(self.doc)]

        def some(pattern):
            return any(re.search(pattern, e) for e in exprs)
        self.assertTrue(some(r"rate\(asset_worker_messages_processed_total"), "throughput")
        for q in ("0.5", "0.95", "0.99"):
            self.assertTrue(some(rf"histogram_quantile\({q}, sum by \(le\) \(rate\("
                                 r"asset_worker_processing_duration_seconds_bucket"),
                            f"latency p{q}")
        self.assertTrue(some(r"sum by \(tier\).*asset_worker_cache_lookups_total"),
                        "hit rate by tier")
        self.assertTrue(some(r'asset_worker_cache_hit_rate\{cache="device_links"'), "seed rate")
        self.assertTrue(some(r"sum by \(type\) \(rate\(asset_worker_errors_total"), "errors")
        self.assertTrue(some(r"nats_stream_messages_pending"), "pending")
        self.assertTrue(some(r"asset_worker_consumer_ack_pending"), "ack pending")
        self.assertTrue(some(r"asset_worker_dlq_depth"), "DLQ depth")
        self.assertTrue(some(r"asset_worker_batch_size_bucket"), "batch size")
        self.assertTrue(some(r"sum\(up\{"), "replicas up")

    def test_panels_use_the_datasource_variable(self):
        variables = {v["name"]: v for v in self.doc["templating"]["list"]}
        ds = variables.get("datasource")
        self.assertIsNotNone(ds, "no datasource variable")
        self.assertEqual((ds["type"], ds["query"]), ("datasource", "prometheus"))
        uid = "${datasource}"
        for p in all_panels(self.doc["panels"]):
            if p["type"] == "row":
                continue
            with self.subTest(panel=p["title"]):
                self.assertEqual(p["datasource"], {"type": "prometheus", "uid": uid})
                for t in p["targets"]:
                    self.assertEqual(t["datasource"]["uid"], uid)
        for name in ("job", "instance"):
            self.assertEqual(variables[name]["datasource"]["uid"], uid)
        ids = [p["id"] for p in all_panels(self.doc["panels"])]
        self.assertEqual(len(ids), len(set(ids)), "panel ids must be unique")

    def test_every_query_is_valid_promql(self):
        prometheus = ops.Prometheus(
            "global: {scrape_interval: 1m}\nscrape_configs: []\n")
        self.addCleanup(prometheus.close)
        queries = list(panel_queries(self.doc))
        queries += [(f"variable {n}", sel) for n, sel, _ in variable_queries(self.doc)]
        for title, expr in queries:
            with self.subTest(panel=title):
                prometheus.query(ops.grafana_template(expr))  # fails on a parse error
        with self.assertRaises(AssertionError):
            prometheus.query("sum(rate(asset_worker_messages_processed_total[1m])")


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
