"""deploy/k8s/: the manifests parse, and what they pass the worker is what the binary accepts.

Every environment variable the ConfigMap, the Secret, the Deployment and the migrate Job pass is
one `asset-worker --help` lists; the ConfigMap's values are run through the real binary
(`migrate` with all of them as they are; `run` with all of them but the addresses of this test's
servers, until it is ready and then drained by SIGTERM); the probes, ports, grace period, PDB,
Service, ServiceMonitor and KEDA trigger agree with the ConfigMap and the Deployment; KEDA's
stream and consumer are the ones the worker creates, read from nats-server's /jsz as KEDA's
nats-jetstream scaler reads them."""

import re
import signal
import subprocess
import sys
import time
import unittest
import urllib.parse

import yaml

import ops_support as ops

K8S = ops.DEPLOY_DIR / "k8s"
# The Secret's files, mounted read-only where the ConfigMap's *_FILE settings point.
SECRET_KEYS = {"database-url", "migrate-database-url", "redis-url", "nats.creds", "ca.crt"}
SECRET_DIR = "/etc/asset-worker/secrets/"


def without_secret_files(env):
    """`env` without the *_FILE settings: their files exist only in the pod."""
    return {k: v for k, v in env.items() if not k.endswith("_FILE")}
# Applied on their own (docs/runbook.md, Deploy): the Secret's placeholders must never overwrite
# the real one, the Job runs first, the others need CRDs.
NOT_IN_KUSTOMIZATION = {"secret.yaml", "migrate-job.yaml", "keda-scaledobject.yaml",
                        "servicemonitor.yaml"}


def load_manifests():
    docs = {}
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue  # kustomize's own file, not an object of the cluster
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                docs.setdefault(doc["kind"], []).append((path.name, doc))
    return docs


def help_env_names():
    out = subprocess.run([ops.worker_binary(), "--help"], env=ops.base_env(),
                         capture_output=True, text=True, timeout=10, check=True).stdout
    return set(re.findall(r"\(Env:([A-Z0-9_]+)\)", out))


def quantity(q):
    """A Kubernetes quantity as a float (cores or bytes)."""
    q = str(q)
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 1e3, "M": 1e6, "G": 1e9}
    for suffix, factor in sorted(units.items(), key=lambda kv: -len(kv[0])):
        if q.endswith(suffix):
            return float(q[: -len(suffix)]) * factor
    return float(q)


def benchmark_figures():
    """The worker's largest peak RSS (MB) and CPU per message (us) in the benchmark's table in
    docs/benchmarks.md: the rows 'peak RSS, ...' (every measured figure in it is the worker's, in MB) and 'CPU per
    message, drain: worker / nats-server / PostgreSQL' (the worker's figure first in each cell)."""
    text = (ops.SOURCE_DIR / "docs/benchmarks.md").read_text()
    rss_row = re.search(r"^\| peak RSS[^|]*\|(.*)$", text, re.M)
    cpu_row = re.search(r"^\| CPU per message, drain: worker[^|]*\|(.*)$", text, re.M)
    assert rss_row and cpu_row, "docs/benchmarks.md's benchmark table no longer has the rows 'peak RSS' and " \
                                "'CPU per message, drain: worker / ...': update this test with it"
    # Every cell but the target's ("<= 100 MB").
    rss = [float(n) for cell in rss_row.group(1).split("|") if "<" not in cell
           for n in re.findall(r"[\d.]+", cell)]
    cpu = [float(n) for cell in cpu_row.group(1).split("|") if "/" in cell
           for n in re.findall(r"[\d.]+", cell.split("/")[0])]
    assert rss and cpu, "no figures in docs/benchmarks.md's 'peak RSS' or 'CPU per message' rows"
    return max(rss), max(cpu)


class ManifestsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.docs = load_manifests()
        cls.env_names = help_env_names()

        def one(kind):
            items = cls.docs.get(kind, [])
            assert len(items) == 1, f"expected one {kind}, found {len(items)}"
            return items[0][1]
        cls.configmap = one("ConfigMap")
        cls.secret = one("Secret")
        cls.deployment = one("Deployment")
        cls.pdb = one("PodDisruptionBudget")
        cls.service = one("Service")
        cls.monitor = one("ServiceMonitor")
        cls.scaled = one("ScaledObject")
        cls.job = one("Job")
        cls.config = cls.configmap["data"]
        cls.pod = cls.deployment["spec"]["template"]["spec"]
        cls.container = cls.pod["containers"][0]

    def test_every_manifest_is_namespace_agnostic_and_named(self):
        for kind, items in self.docs.items():
            for file, doc in items:
                with self.subTest(file=file):
                    self.assertIn("apiVersion", doc)
                    self.assertTrue(doc["metadata"].get("name"))
                    self.assertNotIn("namespace", doc["metadata"])
        kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
        files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
        self.assertEqual(set(kustomization["resources"]), files - NOT_IN_KUSTOMIZATION)

    def test_every_variable_passed_is_a_setting_of_the_binary(self):
        self.assertIn("NATS_DURABLE", self.env_names)  # the --help parse found the list
        self.assertNotIn("BOGUS_SETTING", self.env_names)
        data = dict(self.secret.get("stringData", {}))
        data.update(self.secret.get("data", {}))
        self.assertEqual(set(data), SECRET_KEYS)
        for name in ("DATABASE_URL", "REDIS_URL", "NATS_URL_FILE", "NATS_PASSWORD", "NATS_TOKEN"):
            self.assertNotIn(name, self.config, "a credential in the ConfigMap")
        for name, value in self.config.items():
            with self.subTest(name=name):
                self.assertIn(name, self.env_names)
                self.assertIsInstance(value, str, "ConfigMap values must be strings")
        for spec in (self.pod, self.job["spec"]["template"]["spec"]):
            for c in spec["containers"]:
                refs = {(k, v["name"]) for r in c.get("envFrom", []) for k, v in r.items()}
                self.assertEqual(refs, {("configMapRef", self.configmap["metadata"]["name"])},
                                 "secrets are files, never environment variables")
                # The Secret is mounted read-only where every *_FILE setting points, and each
                # file named is one of its keys.
                volumes = {v["name"]: v for v in spec.get("volumes", [])}
                mounts = [m for m in c.get("volumeMounts", [])
                          if volumes.get(m["name"], {}).get("secret", {}).get("secretName")
                          == self.secret["metadata"]["name"]]
                self.assertEqual([(m["mountPath"].rstrip("/") + "/", m.get("readOnly"))
                                  for m in mounts], [(SECRET_DIR, True)])
                env = dict(self.config)
                for e in c.get("env", []):
                    self.assertIn(e["name"], self.env_names)
                    env[e["name"]] = e.get("value", "")
                files = {k: v for k, v in env.items() if k.endswith("_FILE")}
                self.assertIn("DATABASE_URL_FILE", files)
                for name, path in files.items():
                    self.assertTrue(path.startswith(SECRET_DIR), name)
                    self.assertIn(path[len(SECRET_DIR):], SECRET_KEYS, name)
        for key in ("database-url", "migrate-database-url"):
            url = urllib.parse.urlsplit(data[key])
            self.assertIn(url.scheme, ("postgresql", "postgres"), key)
            query = urllib.parse.parse_qs(url.query)
            self.assertEqual(query.get("sslmode"), ["verify-full"], key)
            self.assertEqual(query.get("sslrootcert"), [SECRET_DIR + "ca.crt"], key)
        self.assertTrue(data["redis-url"].startswith("redis://"))
        self.assertTrue(self.config["NATS_URL"].startswith("tls://"))

    def test_configmap_values_pass_the_binary_s_own_checks(self):
        # `migrate` checks every setting (asset-worker exits 2 naming a bad one) before it
        # touches the database; the database is this test's, the rest is the ConfigMap's.
        env = ops.base_env()
        env.update(without_secret_files(self.config))
        env["DATABASE_URL"] = ops.shared_server_env()["DATABASE_URL"]
        r = subprocess.run([ops.worker_binary(), "migrate"], env=env, capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        # The same check refuses a bad value, so the pass above means something.
        env["BATCH_SIZE"] = "0"
        r = subprocess.run([ops.worker_binary(), "migrate"], env=env, capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("--batch-size", r.stderr)

    def test_configmap_runs_a_worker_that_keda_can_watch(self):
        nats = ops.PrivateNats()
        self.addCleanup(nats.close)
        env = without_secret_files(self.config)
        host = env["HTTP_ADDR"].rsplit(":", 1)[0]
        env.update(ops.shared_server_env())
        env.update({
            "NATS_URL": nats.url,
            "HTTP_ADDR": f"{host}:{ops.free_port()}",
            # One nats-server here; the ConfigMap's value is for the production cluster (and
            # passed the binary's checks in the test above).
            "STREAM_REPLICAS": "1",
            "WORKER_ID": "asset-worker-7d9f-abcde",  # what the Deployment's fieldRef gives
        })
        worker = ops.Worker(env)
        self.addCleanup(worker.close)
        worker.wait_ready()
        self.assertEqual(worker.get("/healthz")[0], 200)

        # What KEDA's nats-jetstream scaler reads: the account's stream and its consumer.
        trigger = self.scaled["spec"]["triggers"][0]["metadata"]
        jsz = nats.jsz()
        accounts = {a["name"]: a for a in jsz.get("account_details", [])}
        self.assertIn(trigger["account"], accounts, jsz)
        streams = {s["name"]: s for s in accounts[trigger["account"]].get("stream_detail", [])}
        self.assertIn(trigger["stream"], streams, f"streams: {list(streams)}")
        stream = streams[trigger["stream"]]
        self.assertIn(self.config["INPUT_SUBJECT"], stream["config"]["subjects"])
        consumers = {c["name"]: c for c in stream.get("consumer_detail", [])}
        self.assertIn(trigger["consumer"], consumers, f"consumers: {list(consumers)}")
        consumer = consumers[trigger["consumer"]]["config"]
        self.assertEqual(consumer["max_ack_pending"], int(self.config["MAX_ACK_PENDING"]))
        self.assertEqual(consumer["max_deliver"], int(self.config["MAX_DELIVER"]))

        # SIGTERM drains and exits 0, well within the pod's grace period.
        started = time.monotonic()
        self.assertEqual(worker.stop(signal.SIGTERM, timeout=60), 0, worker.log())
        drained = time.monotonic() - started
        self.assertLess(drained, int(self.config["SHUTDOWN_TIMEOUT_S"]))
        self.assertLess(drained, self.pod["terminationGracePeriodSeconds"])

    def test_probes_ports_and_grace_period(self):
        port = int(self.config["HTTP_ADDR"].rsplit(":", 1)[1])
        ports = {p["name"]: p["containerPort"] for p in self.container["ports"]}
        self.assertEqual(list(ports.values()), [port])

        def probe_port(probe):
            p = probe["httpGet"]["port"]
            return ports[p] if isinstance(p, str) else p
        c = self.container
        self.assertEqual(c["livenessProbe"]["httpGet"]["path"], "/healthz")
        self.assertEqual(c["readinessProbe"]["httpGet"]["path"], "/readyz")
        self.assertEqual(c.get("startupProbe", c["livenessProbe"])["httpGet"]["path"], "/healthz")
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            if probe in c:
                self.assertEqual(probe_port(c[probe]), port, probe)
        self.assertEqual(c["args"], ["run"])
        self.assertGreater(self.pod["terminationGracePeriodSeconds"],
                           int(self.config["SHUTDOWN_TIMEOUT_S"]))
        # The worker drains within its ack wait too (SPEC D17).
        self.assertLess(int(self.config["SHUTDOWN_TIMEOUT_S"]), int(self.config["ACK_WAIT_S"]))
        self.assertEqual(self.job["spec"]["template"]["spec"]["containers"][0]["args"],
                         ["migrate"])
        self.assertEqual(self.job["spec"]["template"]["spec"]["containers"][0]["image"],
                         c["image"])

    def test_replicas_labels_pdb_and_service(self):
        spec = self.deployment["spec"]
        self.assertEqual(spec["replicas"], 3)
        selector = spec["selector"]["matchLabels"]
        labels = spec["template"]["metadata"]["labels"]
        self.assertLessEqual(selector.items(), labels.items())
        self.assertEqual(self.pdb["spec"]["selector"]["matchLabels"], selector)
        pdb = self.pdb["spec"]
        allowed = pdb["maxUnavailable"] if "maxUnavailable" in pdb else \
            spec["replicas"] - pdb["minAvailable"]
        self.assertGreaterEqual(allowed, 1, "the PDB would block every drain")
        self.assertLess(allowed, spec["replicas"])
        self.assertLessEqual(self.service["spec"]["selector"].items(), labels.items())
        port_names = {p["name"] for p in self.container["ports"]}
        for p in self.service["spec"]["ports"]:
            self.assertIn(p["targetPort"], port_names)
        self.assertLessEqual(self.monitor["spec"]["selector"]["matchLabels"].items(),
                             self.service["metadata"]["labels"].items())
        service_ports = {p["name"] for p in self.service["spec"]["ports"]}
        for e in self.monitor["spec"]["endpoints"]:
            self.assertIn(e["port"], service_ports)
            self.assertEqual(e["path"], "/metrics")
        # alerts.yml expects job="asset-worker": the ServiceMonitor's job is the Service's name.
        self.assertEqual(self.service["metadata"]["name"], "asset-worker")

    def test_security_context(self):
        self.assertTrue(self.pod["securityContext"]["runAsNonRoot"])
        uid = self.pod["securityContext"]["runAsUser"]
        self.assertNotEqual(uid, 0)
        dockerfile = (ops.DEPLOY_DIR / "Dockerfile").read_text()
        self.assertRegex(dockerfile, rf"(?m)^USER {uid}(:\d+)?$", "the image's user")
        for spec in (self.pod, self.job["spec"]["template"]["spec"]):
            for c in spec["containers"]:
                sc = c["securityContext"]
                self.assertTrue(sc["readOnlyRootFilesystem"])
                self.assertFalse(sc["allowPrivilegeEscalation"])
                self.assertEqual(sc["capabilities"]["drop"], ["ALL"])

    def test_resources_fit_the_benchmark(self):
        rss_mb, cpu_us = benchmark_figures()
        res = self.container["resources"]
        # CPU for 10,000 msg/s (the design's rate per worker) at the measured cost per message.
        self.assertGreaterEqual(quantity(res["requests"]["cpu"]), cpu_us * 1e-6 * 10_000)
        self.assertGreaterEqual(quantity(res["requests"]["memory"]), rss_mb * 1e6)
        self.assertGreaterEqual(quantity(res["limits"]["memory"]), 2 * rss_mb * 1e6)
        self.assertGreaterEqual(quantity(res["limits"]["cpu"]), quantity(res["requests"]["cpu"]))

    def test_keda_scales_the_deployment_on_the_durable_consumer(self):
        spec = self.scaled["spec"]
        self.assertEqual(spec["scaleTargetRef"]["name"], self.deployment["metadata"]["name"])
        self.assertEqual(spec["scaleTargetRef"].get("kind", "Deployment"), "Deployment")
        self.assertEqual(spec["minReplicaCount"], self.deployment["spec"]["replicas"])
        self.assertGreater(spec["maxReplicaCount"], spec["minReplicaCount"])
        # Every replica may hold two batches; beyond MAX_ACK_PENDING the extra ones idle.
        self.assertLessEqual(spec["maxReplicaCount"] * 2 * int(self.config["BATCH_SIZE"]),
                             int(self.config["MAX_ACK_PENDING"]))
        triggers = spec["triggers"]
        self.assertEqual([t["type"] for t in triggers], ["nats-jetstream"])
        meta = triggers[0]["metadata"]
        self.assertLessEqual({"natsServerMonitoringEndpoint", "account", "stream", "consumer",
                              "lagThreshold"}, set(meta))
        self.assertEqual(meta["consumer"], self.config["NATS_DURABLE"])
        self.assertGreater(int(meta["lagThreshold"]), 0)
        nats_hosts = {urllib.parse.urlsplit(u.strip()).hostname
                      for u in self.config["NATS_URL"].split(",")}
        self.assertIn(meta["natsServerMonitoringEndpoint"].rsplit(":", 1)[0], nats_hosts)


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
