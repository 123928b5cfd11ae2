"""deploy/Dockerfile, checked without Docker: two Debian 12 stages; the build stage installs
the build packages of scripts/servers.sh and configures from exactly what it copies (run here
with the same cmake command); the runtime stage names a Debian package for every library the
binary needs (`readelf`/`ldd` mapped to packages with `dpkg -S`, on this Debian 12 machine) and
no -dev package, runs as a non-root user, starts asset-worker with `run`, exposes the default
HTTP port, and its HEALTHCHECK command answers for a running worker."""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

import ops_support as ops

DOCKERFILE = ops.DEPLOY_DIR / "Dockerfile"
BUILD_TOOLS = {"build-essential", "cmake", "ninja-build", "pkg-config"}
# -dev packages of scripts/servers.sh that only the tests need.
TEST_ONLY = {"libgtest-dev", "libgmock-dev"}


def instructions(text):
    """[(stage index, INSTRUCTION, arguments)] with continuations joined and comments dropped."""
    out, stage, pending = [], -1, ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        word, _, args = line.partition(" ")
        word = word.upper()
        if word == "FROM":
            stage += 1
        out.append((stage, word, args.strip()))
    return out


def apt_packages(run_args):
    """Packages of every `apt-get install` in a RUN command."""
    pkgs = set()
    for part in re.split(r"&&|;", run_args):
        words = shlex.split(part)
        if "apt-get" in words and "install" in words:
            pkgs.update(w for w in words[words.index("install") + 1:] if not w.startswith("-"))
    return pkgs


def servers_sh_packages():
    text = (ops.SOURCE_DIR / "scripts" / "servers.sh").read_text()
    m = re.search(r"^ATW_PACKAGES=\((.*?)\)", text, re.S | re.M)
    assert m, "scripts/servers.sh has no ATW_PACKAGES=(...) list"
    return set(m.group(1).split())


def installed_packages():
    """{package: (essential or required, [dependency alternatives])} of this machine."""
    out = subprocess.run(
        ["dpkg-query", "-W", "-f=${Package}\t${Essential}\t${Priority}\t${Pre-Depends}, "
         "${Depends}\t${db:Status-Status}\n"],
        capture_output=True, text=True, check=True).stdout
    pkgs = {}
    for line in out.splitlines():
        name, essential, priority, deps, status = line.split("\t")
        if status != "installed":
            continue
        alternatives = []
        for dep in deps.split(","):
            names = [re.sub(r"[\s(:].*", "", d.strip()) for d in dep.split("|") if d.strip()]
            if names:
                alternatives.append(names)
        pkgs[name] = (essential == "yes" or priority == "required", alternatives)
    return pkgs


def closure(roots, pkgs):
    seen, todo = set(), list(roots)
    while todo:
        p = todo.pop()
        if p in seen or p not in pkgs:
            continue
        seen.add(p)
        for alternatives in pkgs[p][1]:
            todo.extend(a for a in alternatives if a in pkgs)
    return seen


def packages_of(paths):
    """{path: Debian package} for library paths, with one `dpkg -S` call. /usr-merged systems
    record a library under /lib or /usr/lib: both are asked."""
    candidates = {}
    for path in paths:
        real = os.path.realpath(path)
        for p in {path, real}:
            candidates.setdefault(p, path)
            if p.startswith("/usr/lib/"):
                candidates.setdefault(p[len("/usr"):], path)
            elif p.startswith("/lib"):
                candidates.setdefault("/usr" + p, path)
    out = subprocess.run(["dpkg", "-S", *candidates], capture_output=True, text=True).stdout
    found = {}
    for line in out.splitlines():
        pkgs, _, file = line.partition(": ")
        if file in candidates:
            found[candidates[file]] = pkgs.split(",")[0].split(":")[0].strip()
    missing = set(paths) - set(found)
    if missing:
        raise AssertionError(f"no Debian package holds {sorted(missing)}")
    return found


class DockerfileTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.steps = instructions(DOCKERFILE.read_text())
        cls.stages = max(s for s, _, _ in cls.steps) + 1
        cls.build = [(w, a) for s, w, a in cls.steps if s == 0]
        cls.runtime = [(w, a) for s, w, a in cls.steps if s == cls.stages - 1]

    def args(self, stage, word):
        return [a for w, a in stage if w == word]

    def test_this_machine_is_the_image_s_debian(self):
        # The package names and library versions below are read off this machine.
        self.assertTrue(Path("/etc/debian_version").read_text().startswith("12"))

    def test_two_debian_12_stages(self):
        self.assertGreaterEqual(self.stages, 2)
        froms = [a for _, w, a in self.steps if w == "FROM"]
        for f in froms:
            image = f.split()[0]
            self.assertRegex(image, r"^debian:bookworm(-slim)?(@sha256:[0-9a-f]{64})?$")
        self.assertRegex(froms[0], r"\bAS build$")

    def test_build_stage_installs_the_build_packages_of_servers_sh(self):
        wanted = {p for p in servers_sh_packages() if p.endswith("-dev") or p in BUILD_TOOLS}
        wanted -= TEST_ONLY
        self.assertTrue(wanted >= {"libnats-dev", "libpq-dev", "cmake"}, wanted)
        named = set().union(*(apt_packages(a) for a in self.args(self.build, "RUN")))
        self.assertEqual(wanted - named, set(), "build packages missing from the build stage")

    def test_every_named_package_is_a_debian_12_package(self):
        pkgs = installed_packages()
        for stage in (self.build, self.runtime):
            for a in self.args(stage, "RUN"):
                for p in apt_packages(a):
                    with self.subTest(package=p):
                        self.assertIn(p, pkgs, "not a package of this Debian 12 machine")

    def test_build_stage_configures_from_what_it_copies(self):
        workdir = self.args(self.build, "WORKDIR")[-1]
        runs = [a for a in self.args(self.build, "RUN") if "cmake -S" in a]
        self.assertEqual(len(runs), 1)
        configure = shlex.split(runs[0].split("&&")[0])
        self.assertEqual(configure[:2], ["cmake", "-S"])
        self.assertIn("-DCMAKE_BUILD_TYPE=Release", configure)
        tmp = tempfile.mkdtemp(prefix="atw-ops-docker-")
        self.addCleanup(shutil.rmtree, tmp, True)
        for a in self.args(self.build, "COPY"):
            *sources, dest = shlex.split(a)
            self.assertFalse(any(s.startswith("--from") for s in sources))
            target = Path(tmp, dest.lstrip("./")) if not dest.startswith("/") else \
                Path(tmp, os.path.relpath(dest, workdir))
            for s in sources:
                src = ops.SOURCE_DIR / s
                self.assertTrue(src.exists(), f"COPY {s}: not in the repository")
                if src.is_dir():
                    shutil.copytree(src, target, dirs_exist_ok=True)
                else:
                    target.mkdir(parents=True, exist_ok=True)
                    shutil.copy(src, target / src.name)
        # Configuring only (about a second of CPU: CMake's compiler probes), not building: the
        # build itself was checked by hand, and would take minutes.
        r = subprocess.run(configure, cwd=tmp, capture_output=True, text=True, timeout=300)
        self.assertEqual(r.returncode, 0, r.stdout[-3000:] + r.stderr[-3000:])
        self.assertTrue(Path(tmp, "build", "build.ninja").exists()
                        or Path(tmp, "build", "Makefile").exists())
        # The binary the runtime stage copies is the one this build makes.
        out_dir = configure[configure.index("-B") + 1]
        copies = [shlex.split(a) for a in self.args(self.runtime, "COPY")]
        froms = [c for c in copies if c[0] == "--from=build"]
        self.assertEqual(len(froms), 1)
        self.assertEqual(froms[0][1], f"{workdir}/{out_dir}/asset-worker")

    def test_runtime_packages_cover_every_library_the_binary_loads(self):
        binary = ops.worker_binary()
        pkgs = installed_packages()
        base = closure([p for p, (core, _) in pkgs.items() if core], pkgs)
        named = set().union(*(apt_packages(a) for a in self.args(self.runtime, "RUN")))
        self.assertEqual({p for p in named if p.endswith("-dev")}, set(), "-dev at runtime")
        covered = closure(named | base, pkgs)

        needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]",
                            subprocess.run(["readelf", "-d", binary], capture_output=True,
                                           text=True, check=True).stdout)
        ldd = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
        paths = dict(re.findall(r"^\s*(\S+) => (/\S+)", ldd, re.M))
        self.assertGreater(len(needed), 5)
        self.assertGreaterEqual(len(paths), len(needed))
        owners = packages_of(paths.values())
        for lib in needed:
            with self.subTest(needed=lib):
                pkg = owners[paths[lib]]
                self.assertTrue(pkg in named or pkg in base,
                                f"{lib} comes from {pkg}: name it in the runtime stage")
        for lib, path in paths.items():
            with self.subTest(library=lib):
                pkg = owners[path]
                self.assertTrue(pkg in covered, f"{lib} ({pkg}) would be missing from the image")
        self.assertNotIn("libnats3.4", base, "the check would pass whatever the stage names")

    def test_runtime_user_entrypoint_and_port(self):
        users = self.args(self.runtime, "USER")
        self.assertEqual(len(users), 1)
        uid = users[0].split(":")[0]
        self.assertRegex(uid, r"^\d+$", "a numeric user lets runAsNonRoot verify it")
        self.assertNotEqual(int(uid), 0)
        self.assertTrue(any(f"--uid {uid}" in a for a in self.args(self.runtime, "RUN")))
        binary = json.loads(self.args(self.runtime, "ENTRYPOINT")[0])
        self.assertEqual(len(binary), 1)
        copy = [shlex.split(a) for a in self.args(self.runtime, "COPY")
                if a.startswith("--from=build")][0]
        self.assertEqual(binary[0], copy[-1])
        self.assertEqual(json.loads(self.args(self.runtime, "CMD")[0]), ["run"])
        help_text = subprocess.run([ops.worker_binary(), "--help"], env=ops.base_env(),
                                   capture_output=True, text=True, check=True).stdout
        default_port = re.search(r"--http-addr TEXT=\S+:(\d+)", help_text).group(1)
        self.assertEqual(self.args(self.runtime, "EXPOSE"), [default_port])
        env = " ".join(self.args(self.runtime, "ENV"))
        self.assertIn(f"HTTP_ADDR=0.0.0.0:{default_port}", env)

    def test_healthcheck_command_answers_for_a_running_worker(self):
        hc = self.args(self.runtime, "HEALTHCHECK")
        self.assertEqual(len(hc), 1)
        cmd = json.loads(hc[0].split(" CMD ", 1)[1])
        self.assertIn("/8080", " ".join(cmd))
        nats = ops.PrivateNats()
        self.addCleanup(nats.close)
        worker = ops.Worker(ops.worker_env(nats))
        self.addCleanup(worker.close)
        worker.wait_ready()
        ok = [c.replace("/8080", f"/{worker.port}") for c in cmd]
        self.assertEqual(subprocess.run(ok, timeout=10).returncode, 0)
        closed = [c.replace("/8080", f"/{ops.free_port()}") for c in cmd]
        self.assertNotEqual(subprocess.run(closed, timeout=10, capture_output=True).returncode, 0)

    def test_dockerignore_keeps_server_data_and_builds_out(self):
        ignore = (ops.DEPLOY_DIR / "Dockerfile.dockerignore").read_text().split()
        for entry in (".git", ".local", "build*"):
            self.assertIn(entry, ignore)


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
