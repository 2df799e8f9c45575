#!/usr/bin/env python3
"""Switchboard's benchmark: one run on the real broker and Postgres that
measures the worker against the ceilings of the same machine, so the ratios
mean something on a noisy 2-core box. See docs/performance.md.

Phases, each on the same traffic:
  publish      the mix, keyed by customer (`switchboard-load traffic`)
  ceiling      librdkafka alone reads it (`switchboard-load ceiling`)
  place        the worker places it (new traffic), peak RSS sampled
  copy         Postgres alone takes the same rows with COPY (same schema)
  replay       a new group reads it again: all duplicates
  per-message  one transaction per message (batch_max_records = 1)
  latency      publish at a steady rate while the worker runs, at the peak
               rate and at half of it; record time to commit, p50/p95/p99

Prints a table and writes every figure to a JSON file. `--secure` places
and measures latency on plaintext and on the secure services (SASL_SSL with
ACLs, TLS Postgres as the worker's role), alternating. `--growth` sweeps
partitions, batch size and email size instead; `--latency-at` measures only
the latency phase, at the steady rates given (`--repeat N` times each,
`--versus NAME=VALUE` alternating the defaults with other settings, with
the median p99 of each); `--poison` measures how long
one record that makes placing fail on every attempt holds its partition.
"""
import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def sh(*args, env=None, capture=True, check=True):
    out = subprocess.run(args, env=env, check=check, capture_output=capture, text=True, cwd=ROOT)
    return out.stdout if capture else None


def psql(db, sql):
    return sh("psql", "-qAtX", "-h", "127.0.0.1", "-U", "postgres", "-d", db, "-c", sql).strip()


class Bench:
    def __init__(self, args):
        self.args = args
        self.profile = "debug" if args.debug_build else "release"
        # SWITCHBOARD_BIN runs a given binary (to compare builds) and skips the build.
        self.given_bin = os.environ.get("SWITCHBOARD_BIN")
        self.bin = self.given_bin or str(ROOT / os.environ.get("CARGO_TARGET_DIR", "target") / self.profile / "switchboard")
        # The traffic and the ceiling come from the load tool, built beside the worker.
        self.load_bin = os.environ.get("SWITCHBOARD_LOAD_BIN") or str(Path(self.bin).with_name("switchboard-load"))
        self.run_id = f"bench{int(time.time())}"
        self.figures = {"profile": "debug" if args.debug_build else "release", "records": args.records, "mix": args.mix, "email_kib": args.email_kib,
                        "partitions": args.partitions, "batch_max_records": args.batch}
        self.databases = []
        # Each phase's topics, by its database, with the environment that
        # deletes them: a broker keeps spending CPU on every partition it
        # holds, so a phase leaves none behind (with the 9,854 partitions
        # earlier runs had left, the broker used 1.45 of this machine's two
        # cores in the minutes after a start).
        self.created_topics = {}
        # The secure services' secrets (`services.sh secure-env`) while a
        # phase runs on them (--secure), else None.
        self.secure = None
        self.secrets = {}

    def psql(self, db, sql):
        if not self.secure:
            return psql(db, sql)
        s = self.secrets
        url = (f"postgresql://{s['SWITCHBOARD_SECURE_PG_OWNER']}:{s['SWITCHBOARD_SECURE_PG_OWNER_PASSWORD']}"
               f"@127.0.0.1:5433/{db}?sslmode=verify-full&sslrootcert={s['SWITCHBOARD_SECURE_CA']}")
        return sh("psql", "-qAtX", url, "-c", sql).strip()

    def secure_env(self, db, role):
        """DATABASE_URL and the Kafka client's settings on the secure
        services: the worker's role and principal, or (`owner`) the schema's
        owner and the broker's admin, which creates topics and publishes as
        the gateways do."""
        s = self.secrets
        user, password = {"worker": ("PG_WORKER", "PG_WORKER_PASSWORD"), "owner": ("PG_OWNER", "PG_OWNER_PASSWORD")}[role]
        kafka = "WORKER" if role == "worker" else "ADMIN"
        return {
            "DATABASE_URL": f"postgres://{s['SWITCHBOARD_SECURE_' + user]}:{s['SWITCHBOARD_SECURE_' + password]}"
                            f"@127.0.0.1:5433/{db}?sslmode=verify-full&sslrootcert={s['SWITCHBOARD_SECURE_CA']}",
            "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9192",
            "SWITCHBOARD_RDKAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "SWITCHBOARD_RDKAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "SWITCHBOARD_RDKAFKA_SASL_USERNAME": s[f"SWITCHBOARD_SECURE_KAFKA_{kafka}_USER"],
            "SWITCHBOARD_RDKAFKA_SASL_PASSWORD": s[f"SWITCHBOARD_SECURE_KAFKA_{kafka}_PASSWORD"],
            "SWITCHBOARD_RDKAFKA_SSL_CA_LOCATION": s["SWITCHBOARD_SECURE_CA"],
        }

    def env(self, db, prefix, group=None, extra=None, role="worker"):
        e = dict(os.environ)
        e.update({
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{db}",
            "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092",
            "SWITCHBOARD_TOPIC_EMAIL": f"{prefix}.email", "SWITCHBOARD_TOPIC_SMS": f"{prefix}.sms",
            "SWITCHBOARD_TOPIC_MESSENGER": f"{prefix}.messenger", "SWITCHBOARD_TOPIC_DLQ": f"{prefix}.dlq",
            "SWITCHBOARD_TOPIC_EVENTS": f"{prefix}.events",
            "SWITCHBOARD_GROUP_ID": group or f"{prefix}-group",
            "SWITCHBOARD__WORKER__BATCH_MAX_RECORDS": str(self.args.batch),
            "SWITCHBOARD_HTTP_ADDR": "off",
            "RUST_LOG": os.environ.get("RUST_LOG", "warn"),
        })
        if self.secure:
            e.update(self.secure_env(db, role))
        e.update(extra or {})
        return e

    def database(self, name):
        if self.secure:
            # The owner creates, migrates and grants; the worker's role runs.
            self.psql("postgres", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            self.psql("postgres", f"CREATE DATABASE {name}")
            sh(self.bin, "migrate", env=self.env(name, "unused", role="owner"))
            sh(self.bin, "grant", "--role", self.secrets["SWITCHBOARD_SECURE_PG_WORKER"], env=self.env(name, "unused", role="owner"))
            return name
        psql("postgres", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        psql("postgres", f"CREATE DATABASE {name}")
        self.databases.append(name)
        sh(self.bin, "migrate", env=self.env(name, "unused"))
        return name

    def topics(self, prefix, db, partitions=None):
        sh(self.bin, "create-topics", "--partitions", str(partitions or self.args.partitions),
           env=self.env(db, prefix, role="owner"))
        self.created_topics[db] = self.env(db, prefix, role="owner")
        if self.secure:
            # The worker principal's ACLs of docs/operations.md, for the
            # groups the phases use.
            user = "User:" + self.secrets["SWITCHBOARD_SECURE_KAFKA_WORKER_USER"]
            acl = ["scripts/services.sh", "secure-acls", "9192", "--add", "--allow-principal", user]
            inputs = [x for t in ("email", "sms", "messenger") for x in ("--topic", f"{prefix}.{t}")]
            groups = [x for g in (f"{prefix}-group", f"{prefix}-g") for x in ("--group", g)]
            sh(*acl, "--operation", "Read", "--operation", "Describe", *inputs, *groups)
            sh(*acl, "--operation", "Write", "--topic", f"{prefix}.dlq", "--topic", f"{prefix}.events")

    def delete_topics(self, db):
        env = self.created_topics.pop(db, None)
        if env is not None:
            out = subprocess.run([self.load_bin, "delete-topics"], env=env, cwd=ROOT, capture_output=True, text=True)
            if out.returncode != 0:
                print(f"bench: the topics of {db} are left behind: {out.stderr.strip()}", file=sys.stderr)

    def drop(self, db):
        self.delete_topics(db)
        if self.secure:
            self.psql("postgres", f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
            return
        psql("postgres", f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")

    def load(self, db, prefix, records, seed, rate=None, extra=None, email_kib=None, agents=None, mix=None,
             email_extras=True, nice=0):
        # Realistic traffic: gateway retries, one email to two inboxes,
        # replies, out-of-office mail; keyed by customer. Copies to a second
        # inbox and automatic replies are emails whatever the mix, so a
        # measure of one other channel turns them off (email_extras=False).
        extras = ("0.03", "0.02") if email_extras else ("0", "0")
        cmd = [self.load_bin, "traffic", "--records", str(records), "--seed", str(seed), "--mix", mix or self.args.mix,
               "--email-bytes", str((email_kib or self.args.email_kib) * 1024), "--duplicates", "0.05", "--siblings", extras[0],
               "--replies", "0.10", "--automatic", extras[1]]
        if rate:
            cmd += ["--rate", str(rate)]
        if agents:
            # The agent desktop acting while the records flow (load --agents).
            cmd += ["--agents", str(agents)]
        return subprocess.Popen(cmd, env=self.env(db, prefix, extra=extra, role="owner"), cwd=ROOT, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, preexec_fn=(lambda: os.nice(nice)) if nice else None)

    def run_worker(self, db, prefix, group, extra=None, log=None):
        """`run --stop-at-end`; returns (wall seconds, peak RSS MiB, counters).
        `log`: a file for the worker's stderr (its per-batch timings with
        RUST_LOG=switchboard_store=debug)."""
        started = time.monotonic()
        stderr = open(log, "w") if log else None
        proc = subprocess.Popen([self.bin, "run", "--stop-at-end"], env=self.env(db, prefix, group, extra),
                                cwd=ROOT, stdout=subprocess.PIPE, stderr=stderr, text=True)
        peak = 0
        while proc.poll() is None:
            try:
                for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]))
            except OSError:
                pass
            time.sleep(0.05)
        out = proc.stdout.read()
        if proc.returncode != 0:
            sys.exit(f"bench: the worker failed ({proc.returncode})")
        return time.monotonic() - started, peak / 1024, json.loads(out)

    def placed_rate(self, db):
        """Messages per second from the first commit to the last: process
        start and group join are not counted."""
        n, span = self.psql(db, "SELECT count(*), extract(epoch FROM max(stored_at) - min(stored_at)) FROM messages").split("|")
        return int(n), int(n) / max(float(span), 1e-3)

    @staticmethod
    def latencies(metrics_text, metric="switchboard_end_to_end_latency_seconds"):
        """p50/p95/p99 of a latency histogram, by default end to end (record
        timestamp to the batch's commit), interpolated within the histogram's
        buckets as Prometheus's histogram_quantile does."""
        buckets = []
        for line in metrics_text.splitlines():
            if line.startswith(f"{metric}_bucket"):
                le = line.split('le="')[1].split('"')[0]
                buckets.append((float("inf") if le == "+Inf" else float(le), float(line.rsplit(" ", 1)[1])))
        total = buckets[-1][1] if buckets else 0
        out = {"records": int(total)}
        for q in (0.5, 0.95, 0.99):
            rank, lower, below = q * total, 0.0, 0.0
            for upper, count in buckets:
                if count >= rank:
                    upper = lower if upper == float("inf") else upper
                    share = (rank - below) / (count - below) if count > below else 1.0
                    out[f"p{int(q * 100)}_ms"] = round((lower + (upper - lower) * share) * 1000, 1)
                    break
                lower, below = upper, count
        return out

    def copy_ceiling(self, source_db):
        """The same rows, into the same schema (indexes, constraints and
        triggers included), with COPY: the server's own time for the five
        COPY statements, read from psql's \\timing in one session."""
        target = self.database(f"{self.run_id}_copy")
        tables = ["conversations", "conversation_channels", "messages", "conversation_links", "conversation_events"]
        files = {t: f"/tmp/{self.run_id}_{t}.copy" for t in tables}
        psql(source_db, "; ".join(f"COPY {t} TO '{files[t]}' (FORMAT binary)" for t in tables))
        script = "\\timing on\n" + "".join(f"COPY {t} FROM '{files[t]}' (FORMAT binary);\n" for t in tables)
        out = subprocess.run(["psql", "-qX", "-h", "127.0.0.1", "-U", "postgres", "-d", target], input=script,
                             capture_output=True, text=True, check=True).stdout
        seconds = sum(float(line.split()[1]) for line in out.splitlines() if line.startswith("Time:")) / 1000
        for f in files.values():
            subprocess.run(["rm", "-f", f])
        n = int(psql(target, "SELECT count(*) FROM messages"))
        return n / max(seconds, 1e-3)

    def latency(self, name, rate, seconds, extra=None, partitions=None, email_kib=None, agents=None, workers=1,
                worker_extra=None):
        """p50/p95/p99 from record timestamp to commit while `load --rate`
        publishes `rate` records/s to `workers` processes of one group that
        run (their histograms summed); `extra` is the environment of both
        the workers and the load tool, `worker_extra` of the workers alone:
        first for `--warm-up-seconds`, then
        for `seconds`, the measured part. What the workers committed during
        the warm-up is reported apart (`warm_up`): the first second of a
        fresh worker on a fresh database is slower (each new Postgres
        backend fills its catalog caches and plans its statements), and in
        a 10 s phase that second had made most of the p99."""
        # Not worker settings, but the script's own: OTHERS_NICE runs the
        # broker and the load tool at this lower CPU priority, so that the
        # worker and Postgres get the cores first, as they would with the
        # broker and the gateways on other machines (which this machine
        # cannot show otherwise); WORKER_BIN runs another build of the
        # worker (against this one, with --versus).
        worker_extra = dict(worker_extra or {})
        nice = int(worker_extra.pop(OTHERS_NICE, 0))
        worker_bin = worker_extra.pop(WORKER_BIN, self.bin)
        prefix, db = f"{self.run_id}{name.replace('_', '')}", self.database(f"{self.run_id}_{name}")
        self.topics(prefix, db, partitions)
        addrs = [f"127.0.0.1:{19464 + i}" for i in range(workers)]
        procs = [subprocess.Popen([worker_bin, "run"], cwd=ROOT, stdout=subprocess.DEVNULL,
                                  env=self.env(db, prefix, extra=dict(extra or {}, **worker_extra,
                                                                     SWITCHBOARD_HTTP_ADDR=addr)))
                 for addr in addrs]
        # Publishing starts once the workers are ready (connected, partitions
        # assigned): the records then measure running workers, not their
        # start and group join, which had put seconds into the percentiles.
        deadline = time.monotonic() + 60
        for addr, proc in zip(addrs, procs):
            while True:
                try:
                    urllib.request.urlopen(f"http://{addr}/readyz", timeout=2).read()
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        sys.exit("bench: a worker did not become ready")
                    time.sleep(0.1)

        def metrics():
            while True:
                try:
                    return self.summed([urllib.request.urlopen(f"http://{addr}/metrics", timeout=5).read().decode()
                                        for addr in addrs])
                except OSError:
                    if time.monotonic() > deadline:
                        sys.exit("bench: the workers' metrics did not answer")
                    time.sleep(0.2)

        warm = self.args.warm_up_seconds
        count = max(int(rate * (warm + seconds)), 200)
        self.renice_broker(nice)
        publishing = self.load(db, prefix, count, seed=3, rate=rate, extra=extra, email_kib=email_kib, agents=agents,
                               nice=nice)
        warm_text = ""
        if warm > 0:
            time.sleep(warm)
            deadline = time.monotonic() + 60
            warm_text = metrics()
        # Who used the CPU while the measured part was published, sampled
        # until the load tool exits.
        groups = {"worker": [p.pid for p in procs], "load": [publishing.pid]}
        start = end = (time.monotonic(), self.cpu_of(groups))
        waits_start = waits_end = self.scheduled(groups)
        ticks = 0
        while publishing.poll() is None:
            end = (time.monotonic(), self.cpu_of(groups))
            ticks += 1
            if ticks % 4 == 0:  # each thread's file: once a second is enough
                waits_end = self.scheduled(groups)
            time.sleep(0.25)
        span = max(end[0] - start[0], 1e-3)
        cores = {k: round((end[1][k] - start[1][k]) / span, 2) for k in start[1]}
        core_waits = self.core_waits(waits_start, waits_end)
        deadline = time.monotonic() + 120
        while True:
            text = metrics()
            if self.latencies(text)["records"] >= count or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        self.renice_broker(0)
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait()
        self.drop(db)
        measured = self.difference(text, warm_text)
        # The worker's share: from taking a record from librdkafka to commit.
        worker = self.latencies(measured, "switchboard_worker_latency_seconds")
        first = self.latencies(warm_text)
        first_worker = self.latencies(warm_text, "switchboard_worker_latency_seconds")
        # Each channel's tail apart (its input topic is `prefix.channel`):
        # whether light SMS records wait as long as heavy emails.
        end_to_end_by, worker_by = (self.by_label(measured, f"switchboard_{m}_latency_by_topic_seconds", "topic")
                                    for m in ("end_to_end", "worker"))
        by_channel = {topic.rsplit(".", 1)[-1]: dict(records=q["records"], p50_ms=q.get("p50_ms"), p99_ms=q.get("p99_ms"),
                                                     worker_p99_ms=worker_by.get(topic, {}).get("p99_ms"))
                      for topic, q in sorted(end_to_end_by.items())}
        # Where the worker's share went: waiting in the partition's buffer
        # behind the batch being placed, waiting for a shared transaction's
        # lane, placing (each record is in all three; they add up to it).
        stages = self.by_label(measured, "switchboard_worker_latency_by_stage_seconds", "stage")
        worker_stages = {s: dict(p50_ms=stages[s].get("p50_ms"), p99_ms=stages[s].get("p99_ms"))
                         for s in ("buffered", "lane", "placing") if s in stages}
        return dict(self.latencies(measured), rate_per_s=rate, worker={k: v for k, v in worker.items() if k != "records"},
                    by_channel=by_channel, worker_stages=worker_stages,
                    warm_up=dict(seconds=warm, records=first["records"], p99_ms=first.get("p99_ms"),
                                 worker_p99_ms=first_worker.get("p99_ms")),
                    cores=cores, core_waits=core_waits)

    @staticmethod
    def broker_pid():
        """The pid of the broker `scripts/services.sh` started, or ""."""
        pid_file = Path.home() / ".cache/switchboard/kafka-broker-9092/pid"
        return pid_file.read_text().strip() if pid_file.exists() else ""

    @classmethod
    def renice_broker(cls, nice):
        """Every thread of the local broker at niceness `nice` (Linux sets it
        per thread). Only root may lower it again: anyone else is told."""
        pid = cls.broker_pid()
        for task in Path(f"/proc/{pid}/task").glob("*") if pid else []:
            try:
                os.setpriority(os.PRIO_PROCESS, int(task.name), nice)
            except ProcessLookupError:
                pass  # a thread that ended meanwhile
            except PermissionError:
                print(f"bench: warning: could not set the broker's niceness to {nice} (only root may lower it); "
                      f"restart it with scripts/services.sh", file=sys.stderr)
                return

    @staticmethod
    def program_namer(groups):
        """A function naming the program a process belongs to (`postgres`,
        `broker`, a group of `groups` (name: pids), or None) from its pid
        and command name, for the CPU and the scheduler figures alike."""
        broker_pid = Bench.broker_pid()
        owner = {str(pid): name for name, pids in groups.items() for pid in pids}
        return lambda pid, comm: "postgres" if comm == "postgres" else "broker" if pid == broker_pid else owner.get(pid)

    @staticmethod
    def cpu_of(groups, reaped=False):
        """CPU seconds used so far by Postgres (all its processes), the
        broker, and each group of `groups` (name: pids), and the machine's
        busy seconds; with `reaped`, what the processes' exited children
        used too (Postgres's ended backends)."""
        tick = os.sysconf("SC_CLK_TCK")
        program_of = Bench.program_namer(groups)
        out = dict.fromkeys(["postgres", "broker", *groups], 0.0)
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                text = stat.read_text()
            except OSError:
                continue
            comm = text.split("(", 1)[1].rsplit(")", 1)[0]
            fields = text.rsplit(")", 1)[1].split()
            used = sum(int(f) for f in fields[11:15 if reaped else 13]) / tick  # utime, stime, cutime, cstime
            name = program_of(stat.parent.name, comm)
            if name:
                out[name] += used
        cpu = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        out["machine"] = (sum(cpu) - cpu[3] - cpu[4]) / tick  # less idle and iowait
        return out

    @staticmethod
    def scheduled(groups):
        """Per thread of Postgres, the broker and each group of `groups`
        (name: pids), the scheduler's own account (Linux's
        /proc/PID/task/TID/schedstat): nanoseconds on a core, nanoseconds
        runnable but waiting for one, and times put on one."""
        program_of = Bench.program_namer(groups)
        out = {}
        for comm_file in Path("/proc").glob("[0-9]*/comm"):
            try:
                name = program_of(comm_file.parent.name, comm_file.read_text().strip())
                if not name:
                    continue
                for task in (comm_file.parent / "task").glob("*/schedstat"):
                    out[(name, task.parent.name)] = tuple(int(v) for v in task.read_text().split()[:3])
            except (OSError, ValueError):
                continue  # a process or thread that ended meanwhile, or no schedstat in this kernel
        return out

    @staticmethod
    def core_waits(start, end):
        """How long each program's threads waited for a core between two
        `scheduled` samples: in all, per second they ran, and on average
        each time they were put on one. On a machine with cores to spare the
        wait is near zero; when it is several times the run, every round
        trip between the worker and Postgres pays it on both sides. Threads
        that ended between the samples are not counted."""
        sums = {}
        for key, (run, wait, slices) in end.items():
            before = start.get(key, (0, 0, 0))
            s = sums.setdefault(key[0], [0, 0, 0])
            for i, v in enumerate((run - before[0], wait - before[1], slices - before[2])):
                s[i] += v
        return {name: dict(run_s=round(run / 1e9, 2), waited_s=round(wait / 1e9, 2),
                           waited_per_run=round(wait / run, 2) if run else None,
                           mean_wait_ms=round(wait / slices / 1e6, 3) if slices else None)
                for name, (run, wait, slices) in sorted(sums.items())}

    @classmethod
    def by_label(cls, metrics_text, family, label):
        """The quantiles of each value's series of a histogram family with a
        `label` label (the input topic, or the worker's stage)."""
        series = {}
        for line in metrics_text.splitlines():
            if line.startswith(f"{family}_bucket{{{label}=\""):
                value = line.split(f'{label}="', 1)[1].split('"', 1)[0]
                le, count = line.split('le="', 1)[1].split('"', 1)[0], line.rsplit(" ", 1)[1]
                series.setdefault(value, []).append(f'{family}_bucket{{le="{le}"}} {count}')
        return {value: cls.latencies("\n".join(lines), family) for value, lines in series.items()}

    @staticmethod
    def channels_note(lat):
        by = lat.get("by_channel") or {}
        return "; p99 by channel: " + ", ".join(f"{ch} {q.get('p99_ms')} ms (worker {q.get('worker_p99_ms')})"
                                                 for ch, q in by.items()) if by else ""

    @staticmethod
    def stages_note(lat):
        st = lat.get("worker_stages") or {}
        return ("; in the worker by stage, p50/p99: " +
                ", ".join(f"{k} {q.get('p50_ms')}/{q.get('p99_ms')} ms" for k, q in st.items())) if st else ""

    @staticmethod
    def cores_note(lat):
        c = lat.get("cores") or {}
        return "; cores: " + ", ".join(f"{k} {v}" for k, v in c.items()) + f" (of {os.cpu_count()})" if c else ""

    @staticmethod
    def core_waits_note(lat):
        w = lat.get("core_waits") or {}
        return ("; waiting for a core, per second run (mean wait): " +
                ", ".join(f"{k} {v['waited_per_run']} s ({v['mean_wait_ms']} ms)" for k, v in w.items())) if w else ""

    @staticmethod
    def warm_up_note(lat):
        w = lat.get("warm_up") or {}
        if not w.get("seconds"):
            return ""
        return f"; first {w['seconds']:g} s: p99 {w.get('p99_ms')} ms (worker {w.get('worker_p99_ms')} ms)"

    @staticmethod
    def difference(after, before):
        """A histogram's bucket counts in `after` less those in `before`."""
        counts = {}
        for line in before.splitlines():
            if "_bucket{" in line:
                head, value = line.rsplit(" ", 1)
                counts[head] = float(value)
        return "\n".join(f"{head} {float(value) - counts.get(head, 0.0)}"
                         for head, value in (line.rsplit(" ", 1) for line in after.splitlines() if "_bucket{" in line))

    @staticmethod
    def summed(texts):
        """Several processes' histograms as one: bucket counts added up."""
        if len(texts) == 1:
            return texts[0]
        totals = {}
        for text in texts:
            for line in text.splitlines():
                if "_bucket{" in line:
                    head, value = line.rsplit(" ", 1)
                    totals[head] = totals.get(head, 0.0) + float(value)
        return "\n".join(f"{head} {value}" for head, value in totals.items())

    def place_only(self, name, records, extra=None, partitions=None, email_kib=None, wall=False):
        """Publishes `records` and places them with `run --stop-at-end`;
        returns (messages/s, peak RSS MiB), and the run's wall seconds
        (start to exit, events drained) when `wall`."""
        prefix, db = f"{self.run_id}{name.replace('_', '')}", self.database(f"{self.run_id}_{name}")
        self.topics(prefix, db, partitions)
        self.load(db, prefix, records, seed=1, extra=extra, email_kib=email_kib).wait()
        seconds, rss, _ = self.run_worker(db, prefix, f"{prefix}-g", extra)
        _, rate = self.placed_rate(db)
        left = int(self.psql(db, "SELECT count(*) FROM event_outbox"))
        self.drop(db)
        if wall:
            return rate, rss, seconds, left
        return rate, rss

    def wal(self):
        """Issue 21, item 4: Postgres's WAL bytes per placed message, per
        channel, with events off and on: `pg_current_wal_lsn()` before and
        after one worker places the same records (the only writer on the
        server while it runs)."""
        a = self.args
        self.prepare()
        rows = []
        for channel in ("sms", "messenger", "email"):
            for events in ("false", "true"):
                name = f"wal_{channel}_{events}"
                prefix, db = f"{self.run_id}{name.replace('_', '')}", self.database(f"{self.run_id}_{name}")
                self.topics(prefix, db)
                extra = {"SWITCHBOARD__EVENTS__ENABLED": events}
                self.load(db, prefix, a.records, seed=1, extra=extra, mix=f"{channel}=100",
                          email_extras=channel == "email").wait()
                psql(db, "CREATE EXTENSION IF NOT EXISTS pg_walinspect")
                before = psql(db, "SELECT pg_current_wal_lsn()")
                self.run_worker(db, prefix, f"{prefix}-g", extra)
                after = psql(db, "SELECT pg_current_wal_lsn()")
                wal = int(float(psql(db, f"SELECT pg_wal_lsn_diff('{after}', '{before}')")))
                messages = int(psql(db, "SELECT count(*) FROM messages"))
                row = {"channel": channel, "events": events == "true", "messages": messages,
                       "wal_bytes": wal, "wal_bytes_per_message": round(wal / max(messages, 1)),
                       "by_relation": self.wal_by_relation(db, before, after, messages)}
                rows.append(row)
                print(f"{channel:<9} events {events:<5}: {messages:,} messages, {wal / 2**20:,.1f} MiB of WAL, "
                      f"{row['wal_bytes_per_message']:,} bytes per message", flush=True)
                for name, per_message, share in row["by_relation"][:12]:
                    print(f"    {name:<48} {per_message:>8,} B/message  {share:>5.1%}")
                self.drop(db)
        Path(a.json).write_text(json.dumps({"wal": rows, "records": a.records}, indent=2))
        print(f"bench: figures written to {a.json}")

    @staticmethod
    def wal_by_relation(db, before, after, messages):
        """Each table's and index's share of the WAL between two LSNs
        (pg_walinspect): a record counts for the relation of its first
        block, full-page images included; records without a block (commits,
        running transactions) count for their resource manager."""
        rows = psql(db, f"""
            WITH r AS (
                SELECT resource_manager, record_length,
                       substring(block_ref from 'rel [0-9]+/([0-9]+)/')::oid AS dboid,
                       substring(block_ref from 'rel [0-9]+/[0-9]+/([0-9]+)')::oid AS filenode
                FROM pg_get_wal_records_info('{before}', '{after}'))
            SELECT CASE WHEN c.relname ~ '^pg_toast_[0-9]+'
                        THEN ((regexp_match(c.relname, '^pg_toast_([0-9]+)'))[1]::oid::regclass::text)
                             || CASE WHEN c.relname LIKE '%_index' THEN ' (TOAST index)' ELSE ' (TOAST)' END
                        WHEN r.dboid NOT IN (0, (SELECT oid FROM pg_database WHERE datname = current_database()))
                        THEN '(other databases)'
                        ELSE COALESCE(c.relname, '(' || lower(r.resource_manager) || ')') END,
                   sum(r.record_length)::bigint
            FROM r LEFT JOIN pg_class c ON c.relfilenode = r.filenode AND r.filenode <> 0
                 AND r.dboid = (SELECT oid FROM pg_database WHERE datname = current_database())
            GROUP BY 1 ORDER BY 2 DESC""")
        parsed = [(name, int(n)) for name, n in (line.split("|") for line in rows.splitlines() if "|" in line)]
        total = sum(n for _, n in parsed) or 1
        return [(name, round(n / max(messages, 1)), n / total) for name, n in parsed]

    def events(self):
        """The cost of conversation events: the same records placed with
        events off and on (twice each, alternating), and latency at half of
        the events-off rate with each, in one run of this script."""
        a = self.args
        self.prepare()
        runs = {}
        for name in ("off", "on", "off_again", "on_again"):
            enabled = "true" if name.startswith("on") else "false"
            rate, rss, wall, left = self.place_only(f"ev_{name}", a.records, extra={"SWITCHBOARD__EVENTS__ENABLED": enabled},
                                                    wall=True)
            runs[name] = {"messages_per_s": round(rate), "wall_s": round(wall, 2), "peak_rss_mib": round(rss),
                          "outbox_left": left}
            print(f"events {enabled:<5}: {rate:,.0f} messages/s placed, run {wall:.1f} s with its events drained "
                  f"({left} left), peak RSS {rss:.0f} MiB")
        off = (runs["off"]["messages_per_s"] + runs["off_again"]["messages_per_s"]) / 2
        on = (runs["on"]["messages_per_s"] + runs["on_again"]["messages_per_s"]) / 2
        rate = max(int(off * 0.5), 100)
        latency = {}
        for enabled in ("false", "true"):
            lat = self.latency(f"evlat{enabled}", rate, a.latency_seconds, extra={"SWITCHBOARD__EVENTS__ENABLED": enabled})
            latency[enabled] = lat
            print(f"events {enabled:<5}: at {rate}/s p50 {lat['p50_ms']} ms, p95 {lat['p95_ms']} ms, p99 {lat['p99_ms']} ms")
        print(f"ratio events on / off: {on / off:.2f} of the throughput")
        Path(a.json).write_text(json.dumps({"events": runs, "latency": latency, "ratio_on_to_off": on / off,
                                            "records": a.records, "mix": a.mix}, indent=2))
        print(f"bench: figures written to {a.json}")

    def secure_cost(self):
        """Issue 23, item 5: the same records placed on the plaintext and on
        the secure services (twice each, alternating), and latency at half
        of the plaintext rate on each, in one run of this script."""
        a = self.args
        self.prepare()
        sh("scripts/services.sh", "secure-broker-start", capture=False)
        sh("scripts/services.sh", "secure-pg-start", capture=False)
        self.secrets = dict(line.split("=", 1) for line in sh("scripts/services.sh", "secure-env").splitlines() if "=" in line)
        runs = {}
        for name in ("plain", "secure", "plain_again", "secure_again"):
            self.secure = name.startswith("secure")
            rate, rss = self.place_only(f"sec_{name}", a.records)
            runs[name] = {"messages_per_s": round(rate), "peak_rss_mib": round(rss)}
            print(f"{name:<12}: {rate:,.0f} messages/s placed, peak RSS {rss:.0f} MiB", flush=True)
        plain = (runs["plain"]["messages_per_s"] + runs["plain_again"]["messages_per_s"]) / 2
        secure = (runs["secure"]["messages_per_s"] + runs["secure_again"]["messages_per_s"]) / 2
        rate = max(int(plain * 0.5), 100)
        latency = {}
        for name in ("plain", "secure"):
            self.secure = name == "secure"
            lat = self.latency(f"seclat{name}", rate, a.latency_seconds)
            latency[name] = lat
            print(f"{name:<12}: at {rate}/s p50 {lat['p50_ms']} ms, p95 {lat['p95_ms']} ms, p99 {lat['p99_ms']} ms "
                  f"(in the worker: p99 {lat['worker'].get('p99_ms')} ms)", flush=True)
        self.secure = None
        print(f"ratio secure / plaintext: {secure / plain:.2f} of the throughput")
        Path(a.json).write_text(json.dumps({"runs": runs, "latency": latency, "ratio_secure_to_plain": secure / plain,
                                            "records": a.records, "mix": a.mix}, indent=2))
        print(f"bench: figures written to {a.json}")

    def prepare(self):
        """The services, and the binary unless one is given."""
        sh("scripts/services.sh", capture=False)
        # The secure services (started by the tests or `--secure`) stay up
        # after them; their broker alone takes a tenth of a core idle, which
        # the figures of a two-core machine would silently pay.
        if not self.args.secure:
            for port, stop in ((9192, "secure-broker-stop"), (5433, "secure-pg-stop")):
                with socket.socket() as probe:
                    probe.settimeout(0.5)
                    if probe.connect_ex(("127.0.0.1", port)) == 0:
                        print(f"bench: something answers on 127.0.0.1:{port} (the secure services?) and takes CPU "
                              f"from the figures; `scripts/services.sh {stop}` stops it.", file=sys.stderr, flush=True)
        if not self.given_bin:
            print(f"bench: building ({self.profile}).", flush=True)
            build = ["cargo", "build", "--locked", "--workspace", "--bins"]
            sh(*(build + ([] if self.args.debug_build else ["--release"])), capture=False)

    def growth(self):
        """Item 4 of issue 11: throughput and p99 against partitions, batch
        size and email size, one variable at a time, the others at their
        defaults. p99 is taken at half of that point's own peak."""
        a = self.args
        self.prepare()
        base = {"partitions": a.partitions, "batch": a.batch, "email_kib": a.email_kib}
        points = [("partitions", v) for v in (1, 2, 4, 8)] + [("batch", v) for v in (50, 200, 500, 1000, 2000)] \
            + [("email_kib", v) for v in (2, 20, 100, 1024)]
        rows = []
        for n, (var, value) in enumerate(points):
            point = dict(base, **{var: value})
            # Big emails: fewer records, so a point publishes at most about
            # 300 MiB of email (a tenth of the default mix is email).
            records = min(a.records, max(2000, int(300 * 1024 / max(point["email_kib"], 1) / 0.1)))
            extra = {"SWITCHBOARD__WORKER__BATCH_MAX_RECORDS": str(point["batch"])}
            rate, rss = self.place_only(f"g{n}", records, extra, point["partitions"], point["email_kib"])
            lat = self.latency(f"g{n}l", max(int(rate / 2), 50), a.latency_seconds, extra, point["partitions"],
                               point["email_kib"])
            row = dict(point, variable=var, records=records, place_messages_per_s=round(rate),
                       peak_rss_mib=round(rss), half_peak_rate=lat["rate_per_s"], p99_ms=lat.get("p99_ms"))
            rows.append(row)
            print(f"{var}={value}: {rate:,.0f} messages/s, RSS {rss:.0f} MiB, p99 {lat.get('p99_ms')} ms "
                  f"at {lat['rate_per_s']}/s", flush=True)
        print("\n| varied | partitions | batch | email KiB | records | place msg/s | p99 ms at half of it | peak RSS MiB |")
        print("|---|---|---|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['variable']} | {r['partitions']} | {r['batch']} | {r['email_kib']} | {r['records']:,} | "
                  f"{r['place_messages_per_s']:,} | {r['p99_ms']} (at {r['half_peak_rate']:,}/s) | {r['peak_rss_mib']} |")
        Path(a.json).write_text(json.dumps({"growth": rows, "mix": a.mix}, indent=2))
        print(f"bench: figures written to {a.json}")

    @staticmethod
    def cpu_seconds():
        """CPU seconds used so far by Postgres (its processes, and the
        backends it has reaped), the broker, and this script's reaped
        children (the workers), and the machine's busy and total seconds."""
        out = Bench.cpu_of({}, reaped=True)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        out["workers"] = children.ru_utime + children.ru_stime
        out["machine_busy"] = out.pop("machine")
        cpu = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        out["machine_total"] = sum(cpu) / os.sysconf("SC_CLK_TCK")
        return out

    def processes(self):
        """Issue 21, item 3: 1, 2 and 3 worker processes in one group on
        the same traffic and partitions: throughput, where the CPU goes
        (workers, Postgres, broker, per 1,000 messages) and how busy the
        machine is, then p99 at one steady rate (half of one process's
        peak) with that many processes running."""
        a = self.args
        self.prepare()
        rows, steady = [], None
        for k in (1, 2, 3):
            name = f"proc{k}"
            prefix, db = f"{self.run_id}{name}", self.database(f"{self.run_id}_{name}")
            self.topics(prefix, db)
            self.load(db, prefix, a.records, seed=1).wait()
            before = self.cpu_seconds()
            procs = [subprocess.Popen([self.bin, "run", "--stop-at-end"], env=self.env(db, prefix, f"{prefix}-g"),
                                      cwd=ROOT, stdout=subprocess.DEVNULL) for _ in range(k)]
            if any(proc.wait() != 0 for proc in procs):
                sys.exit("bench: a worker failed")
            after = self.cpu_seconds()
            messages, rate = self.placed_rate(db)
            self.drop(db)
            used = {key: after[key] - before[key] for key in after}
            per_k = {key: round(used[key] / max(messages, 1) * 1000, 3) for key in ("workers", "postgres", "broker")}
            busy = used["machine_busy"] / max(used["machine_total"], 1e-9)
            steady = steady or max(int(rate * 0.5), 100)
            lat = self.latency(f"proc{k}l", steady, a.latency_seconds, workers=k)
            row = {"processes": k, "messages": messages, "place_messages_per_s": round(rate),
                   "cpu_s_per_1000_messages": per_k, "machine_busy": round(busy, 2), "steady_rate": steady,
                   "p99_ms": lat.get("p99_ms"), "worker_p99_ms": lat["worker"].get("p99_ms")}
            rows.append(row)
            print(f"{k} process(es): {rate:,.0f} messages/s; CPU s per 1,000 messages: workers {per_k['workers']}, "
                  f"Postgres {per_k['postgres']}, broker {per_k['broker']}; machine {busy:.0%} busy; "
                  f"p99 at {steady}/s {lat.get('p99_ms')} ms (worker {lat['worker'].get('p99_ms')} ms)", flush=True)
        print("\n| processes | place msg/s | CPU s / 1,000 msg: workers | Postgres | broker | machine busy | p99 ms (worker) at steady rate |")
        print("|---|---|---|---|---|---|---|")
        for r in rows:
            c = r["cpu_s_per_1000_messages"]
            print(f"| {r['processes']} | {r['place_messages_per_s']:,} | {c['workers']} | {c['postgres']} | {c['broker']} | "
                  f"{r['machine_busy']:.0%} | {r['p99_ms']} ({r['worker_p99_ms']}) at {r['steady_rate']:,}/s |")
        Path(a.json).write_text(json.dumps({"processes": rows, "records": a.records, "mix": a.mix,
                                            "partitions": a.partitions}, indent=2))
        print(f"bench: figures written to {a.json}")

    def latency_sweep(self):
        """p50/p95/p99 at each given steady rate and nothing else: up to
        which rate the latency stays low on this machine. With `--repeat`
        each rate is measured that many times, and with `--versus` every
        round measures the default settings and the given ones back to
        back (in the order A B, then B A, so neither always runs first):
        p99 near the machine's edge moves by a factor of two or three from
        one run to the next, so a change is judged on the median of
        alternated runs, which the summary prints."""
        a = self.args
        self.prepare()
        variants = [("default", {})]
        if a.versus:
            variants.append((",".join(f"{k}={v}" for k, v in a.versus.items()), a.versus))
        rows = []
        for n, rate in enumerate(a.latency_at):
            for round_ in range(a.repeat):
                order = variants if round_ % 2 == 0 else variants[::-1]
                for v, (label, extra) in enumerate(order):
                    lat = self.latency(f"r{n}x{round_}v{v}", rate, a.latency_seconds, worker_extra=extra)
                    lat["variant"] = label
                    rows.append(lat)
                    w = lat["worker"]
                    tag = f"[{label}, run {round_ + 1}] " if len(variants) > 1 or a.repeat > 1 else ""
                    print(f"{tag}{rate:,} records/s: p50 {lat.get('p50_ms')} ms, p95 {lat.get('p95_ms')} ms, "
                          f"p99 {lat.get('p99_ms')} ms; in the worker p50 {w.get('p50_ms')} ms, p95 {w.get('p95_ms')} ms, "
                          f"p99 {w.get('p99_ms')} ms{self.channels_note(lat)}{self.stages_note(lat)}"
                          f"{self.warm_up_note(lat)}{self.cores_note(lat)}{self.core_waits_note(lat)}",
                          flush=True)
        summary = self.sweep_summary(rows, [label for label, _ in variants]) if len(rows) > len(a.latency_at) else []
        for line in summary:
            print(line["text"])
        Path(a.json).write_text(json.dumps({"latency_at": rows, "summary": summary, "mix": a.mix}, indent=2))
        print(f"bench: figures written to {a.json}")

    @staticmethod
    def sweep_summary(rows, labels):
        """Per rate and settings: the median, lowest and highest p99 (end to
        end and the worker's) of the repeated runs; with two settings, the
        ratio of their medians."""
        def median(values):
            values = sorted(values)
            mid = len(values) // 2
            return values[mid] if len(values) % 2 else round((values[mid - 1] + values[mid]) / 2, 1)

        out = []
        for rate in sorted({r["rate_per_s"] for r in rows}):
            medians = {}
            for label in labels:
                ran = [r for r in rows if r["rate_per_s"] == rate and r["variant"] == label]
                # A run with no p99 (nothing measured) is counted, not hidden.
                runs = [r for r in ran if r.get("p99_ms") is not None]
                if not runs:
                    continue
                p99 = [r["p99_ms"] for r in runs]
                worker = [r["worker"]["p99_ms"] for r in runs if r["worker"].get("p99_ms") is not None]
                medians[label] = median(p99)
                waits = {name: median(ws) for name in ("postgres", "worker")
                         if (ws := [r["core_waits"][name]["waited_per_run"] for r in runs
                                    if (r.get("core_waits") or {}).get(name, {}).get("waited_per_run") is not None])}
                missing = f", {len(ran) - len(runs)} without a p99" if len(ran) > len(runs) else ""
                out.append(dict(rate_per_s=rate, variant=label, runs=len(runs), runs_without_p99=len(ran) - len(runs),
                                p99_median_ms=medians[label], p99_min_ms=min(p99), p99_max_ms=max(p99),
                                worker_p99_median_ms=median(worker) if worker else None,
                                waited_per_run_median=waits,
                                text=f"{rate:,} records/s, {label}: p99 median {medians[label]} ms of {len(runs)} runs "
                                     f"({min(p99)}-{max(p99)}{missing}); the worker's median "
                                     f"{median(worker) if worker else None} ms" +
                                     ("; waiting for a core per second run, median: " +
                                      ", ".join(f"{k} {v} s" for k, v in waits.items()) if waits else "")))
            if len(medians) == 2 and medians.get(labels[0]):
                ratio = round(medians[labels[1]] / medians[labels[0]], 2)
                out.append(dict(rate_per_s=rate, ratio=ratio,
                                text=f"{rate:,} records/s: median p99 of {labels[1]} / default = {ratio}"))
        return out

    def poison(self):
        """One partition of SMS, one record in it panicking on every placing
        attempt (`worker.test_panic_placing`): the time the isolation held
        the partition (the worker's `held_ms`), and the whole run against
        the same records with no poison, in one run of this script."""
        a = self.args
        self.prepare()
        rows = {}
        for name in ("clean", "poisoned"):
            prefix, db = f"{self.run_id}{name}", self.database(f"{self.run_id}_{name}")
            self.topics(prefix, db, partitions=1)
            cmd = [self.load_bin, "traffic", "--records", str(a.records), "--seed", "5", "--mix", "sms=100"]
            subprocess.run(cmd, env=self.env(db, prefix), cwd=ROOT, check=True, capture_output=True)
            # The middle of the first full batch.
            offset = min(a.batch, a.records) // 2
            extra = {"SWITCHBOARD_LOG_FORMAT": "json"}
            if name == "poisoned":
                extra["SWITCHBOARD__WORKER__TEST_PANIC_PLACING"] = f"{prefix}.sms/0/{offset}"
            log = f"/tmp/{self.run_id}_{name}.log"
            wall, _, counters = self.run_worker(db, prefix, f"{prefix}-g", extra, log=log)
            held = [json.loads(line).get("held_ms") for line in Path(log).read_text().splitlines()
                    if "isolate the records" in line]
            rows[name] = {"wall_s": round(wall, 2), "records": counters["records"],
                          "dead_lettered": counters["records_dead_lettered"], "splits": counters.get("batch_splits", 0),
                          "held_ms": held[0] if held else None}
            self.drop(db)
        c, p = rows["clean"], rows["poisoned"]
        print(f"clean:    {c['records']:,} records in {c['wall_s']} s")
        print(f"poisoned: {p['records']:,} records in {p['wall_s']} s, {p['dead_lettered']} dead-lettered, "
              f"{p['splits']} splits; the poison held its partition {p['held_ms']} ms "
              f"(batches of {a.batch}, worker.failure_attempts 3)")
        Path(a.json).write_text(json.dumps({"poison": rows, "batch_max_records": a.batch}, indent=2))
        print(f"bench: figures written to {a.json}")

    def main(self):
        a = self.args
        self.prepare()
        prefix = self.run_id
        db = self.database(f"{self.run_id}_place")
        self.topics(prefix, db)
        f = self.figures

        t = time.monotonic()
        self.load(db, prefix, a.records, seed=1).wait()
        f["publish_records_per_s"] = a.records / (time.monotonic() - t)

        ceiling = json.loads(sh(self.load_bin, "ceiling", env=self.env(db, prefix)))
        f["ceiling_consume_records_per_s"] = ceiling["records"] / max(ceiling["seconds"], 1e-3)

        wall, rss, counters = self.run_worker(db, prefix, f"{prefix}-place", log=os.environ.get("BENCH_PLACE_LOG"))
        messages, rate = self.placed_rate(db)
        f.update({"place_messages": messages, "place_messages_per_s": rate, "place_wall_s": wall,
                  "place_peak_rss_mib": rss, "place_counters": counters})

        f["ceiling_copy_messages_per_s"] = self.copy_ceiling(db)

        wall, _, counters = self.run_worker(db, prefix, f"{prefix}-replay")
        idle, _, _ = self.run_worker(db, prefix, f"{prefix}-replay")  # start, join, find the end
        f["replay_records_per_s"] = counters["records"] / max(wall - idle, 1e-3)
        f["replay_duplicates"] = counters["records_duplicate"]

        # One transaction per message, on a tenth of the traffic.
        small = max(a.records // 10, 1000)
        pm_prefix, pm_db = f"{prefix}pm", self.database(f"{self.run_id}_pm")
        self.topics(pm_prefix, pm_db)
        self.load(pm_db, pm_prefix, small, seed=2).wait()
        self.run_worker(pm_db, pm_prefix, f"{pm_prefix}-g", {"SWITCHBOARD__WORKER__BATCH_MAX_RECORDS": "1"})
        f["per_message_messages_per_s"] = self.placed_rate(pm_db)[1]

        # Latency: publish at a steady rate while one worker runs.
        for name, share in (("peak", 1.0), ("half_peak", 0.5)):
            rate = max(int(f["place_messages_per_s"] * share), 100)
            f[f"latency_{name}"] = self.latency(name, rate, a.latency_seconds)
        # The same at half of peak with the agent desktop acting meanwhile
        # (load --agents): reopens, follow-ups, merges and added channels.
        rate = max(int(f["place_messages_per_s"] * 0.5), 100)
        f["latency_half_peak_agents"] = self.latency("agents", rate, a.latency_seconds, agents=a.agents)

        f["ratio_place_to_copy_ceiling"] = f["place_messages_per_s"] / f["ceiling_copy_messages_per_s"]
        f["ratio_place_to_consume_ceiling"] = f["place_messages_per_s"] / f["ceiling_consume_records_per_s"]
        f["ratio_batched_to_per_message"] = f["place_messages_per_s"] / f["per_message_messages_per_s"]
        self.report()

    def report(self):
        f = self.figures
        rows = [
            ("publish", f"{f['publish_records_per_s']:,.0f} records/s"),
            ("ceiling: librdkafka consume", f"{f['ceiling_consume_records_per_s']:,.0f} records/s"),
            ("ceiling: Postgres COPY", f"{f['ceiling_copy_messages_per_s']:,.0f} messages/s"),
            ("place (new traffic)", f"{f['place_messages_per_s']:,.0f} messages/s  ({f['place_messages']} messages)"),
            ("replay (all duplicates)", f"{f['replay_records_per_s']:,.0f} records/s"),
            ("one transaction per message", f"{f['per_message_messages_per_s']:,.0f} messages/s"),
            ("worker peak RSS", f"{f['place_peak_rss_mib']:.0f} MiB"),
        ]
        for name in ("peak", "half_peak", "half_peak_agents"):
            lat = f[f"latency_{name}"]
            label = name.replace("_agents", f", {self.args.agents} agent actions/s").replace("_", " ")
            rows.append((f"latency at {label} ({lat['rate_per_s']}/s)",
                         f"p50 {lat['p50_ms']} ms, p95 {lat['p95_ms']} ms, p99 {lat['p99_ms']} ms "
                         f"(in the worker: p99 {lat['worker'].get('p99_ms')} ms){self.channels_note(lat)}"
                         f"{self.stages_note(lat)}{self.warm_up_note(lat)}{self.cores_note(lat)}"
                         f"{self.core_waits_note(lat)}"))
        rows += [
            ("ratio place / COPY ceiling", f"{f['ratio_place_to_copy_ceiling']:.2f}"),
            ("ratio place / consume ceiling", f"{f['ratio_place_to_consume_ceiling']:.2f}"),
            ("ratio batched / per-message", f"{f['ratio_batched_to_per_message']:.1f}"),
        ]
        width = max(len(r[0]) for r in rows)
        for name, value in rows:
            print(f"{name:<{width}}  {value}")
        Path(self.args.json).write_text(json.dumps(f, indent=2, default=str))
        print(f"bench: figures written to {self.args.json}")

    def cleanup(self):
        self.renice_broker(0)  # if a phase with BENCH_OTHERS_NICE stopped midway
        for db in list(self.created_topics):
            self.delete_topics(db)
        for db in self.databases:
            subprocess.run(["psql", "-qAtX", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-c",
                            f"DROP DATABASE IF EXISTS {db} WITH (FORCE)"], capture_output=True)


def parse():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--records", type=int, default=200_000)
    p.add_argument("--mix", default="sms=70,messenger=20,email=10")
    p.add_argument("--email-kib", type=int, default=20)
    p.add_argument("--partitions", type=int, default=6)
    p.add_argument("--batch", type=int, default=500, help="batch_max_records for the batched runs")
    p.add_argument("--latency-seconds", type=float, default=10.0,
                   help="how long each latency phase publishes after its warm-up, the part measured")
    p.add_argument("--warm-up-seconds", type=float, default=3.0,
                   help="how long each latency phase publishes before it measures (reported apart)")
    p.add_argument("--json", default="bench.json")
    p.add_argument("--growth", action="store_true",
                   help="instead of the phases above: throughput, p99 and RSS against partitions, batch size and "
                        "email size (issue 11, item 4)")
    p.add_argument("--latency-at", type=lambda text: [int(r) for r in text.split(",")], metavar="RATES",
                   help="only the latency phase, at each of these steady rates (records/s, comma-separated)")
    p.add_argument("--repeat", type=int, default=1,
                   help="with --latency-at: measure each rate this many times and print the median p99 (with "
                        "--versus, an even number runs each setting first equally often)")
    p.add_argument("--versus", type=lambda text: dict(kv.split("=", 1) for kv in text.split(",")), metavar="NAME=VALUE,...",
                   help="with --latency-at: in each round also measure with these environment settings for the "
                        "worker process only (e.g. SWITCHBOARD__WORKER__SHARED_TRANSACTIONS=4), alternating with the "
                        "defaults; BENCH_OTHERS_NICE=N runs the broker and the load tool at niceness N instead, "
                        "BENCH_WORKER_BIN=PATH another build of the worker")
    p.add_argument("--agents", type=float, default=50.0,
                   help="agent actions per second in the latency phase with the desk at work (load --agents)")
    p.add_argument("--wal", action="store_true", help="Postgres WAL bytes per placed message, per channel, events off and on")
    p.add_argument("--events", action="store_true",
                   help="the cost of conversation events: throughput and latency with events off and on")
    p.add_argument("--processes", action="store_true",
                   help="1, 2 and 3 worker processes in one group: throughput, CPU per component, p99")
    p.add_argument("--secure", action="store_true",
                   help="throughput and latency on the plaintext and on the secure services (SASL_SSL, ACLs, TLS Postgres)")
    p.add_argument("--poison", action="store_true",
                   help="only: how long one record that makes placing panic on every attempt holds its partition")
    p.add_argument("--debug-build", action="store_true",
                   help="use the debug build (CI's smoke run, so the benchmark cannot rot; figures mean nothing)")
    return p.parse_args()


# `--versus` settings that bench.py takes for itself (see `latency`).
OTHERS_NICE = "BENCH_OTHERS_NICE"
WORKER_BIN = "BENCH_WORKER_BIN"


if __name__ == "__main__":
    bench = Bench(parse())
    try:
        if bench.args.latency_at:
            bench.latency_sweep()
        elif bench.args.growth:
            bench.growth()
        elif bench.args.poison:
            bench.poison()
        elif bench.args.processes:
            bench.processes()
        elif bench.args.secure:
            bench.secure_cost()
        elif bench.args.events:
            bench.events()
        elif bench.args.wal:
            bench.wal()
        else:
            bench.main()
    finally:
        bench.cleanup()
