"""A throw-away single-node Slurm cluster for tests.

:class:`SlurmCluster` starts a private ``munged``, ``slurmctld`` and ``slurmd``
whose whole state (keys, sockets, configuration, spool, logs, pid files) lives
in one temporary folder, so that tests can submit real batch jobs with
``sbatch`` without touching ``/etc/slurm``, ``/etc/munge`` or a munge daemon
that the system may already run. Every client command gets ``SLURM_CONF``
pointing at the private configuration.

This is a helper module, not a test file; ``tests/test_slurm.py`` uses it::

    with SlurmCluster() as cluster:
        job = cluster.submit("slurm/run.sbatch", ["b1"], sbatch_args=["--ntasks=2"])
        result = cluster.wait(job, timeout=120)
        assert result.state == "COMPLETED"

The daemons run as root (``SlurmUser=root``), which is what the Debian test
machines allow. Nothing is skipped: a missing binary raises
:class:`SlurmClusterError` with a message that says what to install.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["JobResult", "SlurmCluster", "SlurmClusterError", "TERMINAL_STATES"]

#: Binaries the harness needs (Debian packages ``munge``, ``slurmctld``,
#: ``slurmd`` and ``slurm-client``; ``make build`` installs them).
REQUIRED_BINARIES = (
    "munged",
    "slurmctld",
    "slurmd",
    "sbatch",
    "scontrol",
    "sinfo",
    "squeue",
    "scancel",
)

#: Job states after which a job never runs again (``squeue --help`` lists them all).
TERMINAL_STATES = frozenset(
    {
        "BOOT_FAIL",
        "CANCELLED",
        "COMPLETED",
        "DEADLINE",
        "FAILED",
        "NODE_FAIL",
        "OUT_OF_MEMORY",
        "PREEMPTED",
        "REVOKED",
        "SPECIAL_EXIT",
        "TIMEOUT",
    }
)

#: Environment variable set in the environment of every process this harness
#: starts (daemons and jobs); its value is the cluster's folder. ``stop`` uses it
#: to find job processes that outlived their ``slurmstepd``.
MARKER_VAR = "TOKENSIM_TEST_SLURM_CLUSTER"

# Open MPI's mpirun refuses to run as root unless both are set; jobs of this
# cluster run as root, so every job gets them.
ROOT_MPI_ENV = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"}


class SlurmClusterError(RuntimeError):
    """The test cluster could not be started, or a Slurm command failed."""


@dataclass
class JobResult:
    """Final record of a batch job, as ``scontrol show job -o`` reports it.

    Attributes
    ----------
    job_id : int
        Slurm job id.
    state : str
        Final ``JobState`` (e.g. ``"COMPLETED"``, ``"FAILED"``).
    exit_code : int
        Exit status of the batch script (first half of ``ExitCode=N:S``).
    signal : int
        Signal that ended the batch script, 0 if none (second half of ``ExitCode``).
    fields : dict of str to str
        Every ``Key=Value`` pair of the ``scontrol`` record.
    """

    job_id: int
    state: str
    exit_code: int
    signal: int
    fields: dict[str, str] = field(repr=False)

    @property
    def stdout_path(self) -> Path:
        """Path of the job's standard output file (``StdOut`` field)."""
        return Path(self.fields["StdOut"])

    def output(self) -> str:
        """Return the job's standard output, or a note if the file is missing.

        Returns
        -------
        str
            Text of :attr:`stdout_path`.
        """
        try:
            return self.stdout_path.read_text(errors="replace")
        except OSError as exc:
            return f"<no job output: {exc}>"


def _die_with_parent() -> None:
    """In a forked child: get SIGTERM when the parent (pytest) dies.

    Without it a pytest killed by SIGKILL (an outer timeout) would leave the
    daemons running forever; ``atexit`` cannot help there.
    """
    with contextlib.suppress(OSError, AttributeError):
        pr_set_pdeathsig = 1  # from <sys/prctl.h>
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _which(name: str) -> str | None:
    """Find a program on PATH, or in the sbin folders a non-login PATH may lack."""
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/local/sbin")


def _free_port() -> int:
    """Return a TCP port on localhost that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tail(path: Path, lines: int = 30) -> str:
    """Return the last ``lines`` lines of a log file, or a note if it is absent."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"<{path} not written>"
    return "\n".join(text.splitlines()[-lines:])


def _parse_record(line: str) -> dict[str, str]:
    """Split one ``scontrol -o`` line into its ``Key=Value`` fields.

    Values may contain spaces (``Command``, ``WorkDir``), so a field runs up to
    the next `` Key=``; a key is a run of letters, digits, ``:`` and ``/``.
    """
    fields: dict[str, str] = {}
    for match in re.finditer(r"(?:^|\s)([A-Za-z][\w:/]*)=(.*?)(?=\s[A-Za-z][\w:/]*=|$)", line):
        fields[match.group(1)] = match.group(2)
    return fields


class SlurmCluster:
    """Private single-node Slurm cluster (munged + slurmctld + slurmd).

    Use it as a context manager; leaving the ``with`` block, or a failure while
    starting, stops the daemons by pid and removes the temporary folder.

    Parameters
    ----------
    cpus : int, optional
        CPUs the node declares. ``SlurmdParameters=config_overrides`` lets the
        node declare more than the machine has, so 2-task jobs fit on a small VM.
    startup_timeout : float, optional
        Seconds to wait for each daemon, and for the node to become idle.
    base_dir : str or Path, optional
        Parent of the temporary folder (default: the system temporary folder).
        Munge insists that every folder above its files is owned by root and not
        writable by others unless sticky, as ``/tmp`` is.
    keep : bool, optional
        Keep the temporary folder after stopping (for debugging).

    Attributes
    ----------
    root : Path
        The temporary folder holding all state (set by :meth:`start`).
    conf : Path
        The private ``slurm.conf``.
    node : str
        Name of the single node (``hostname -s``).
    partition : str
        Name of the single, default partition.
    """

    partition = "tokensim"

    def __init__(
        self,
        cpus: int = 4,
        startup_timeout: float = 60.0,
        base_dir: str | os.PathLike[str] | None = None,
        keep: bool = False,
    ) -> None:
        self.cpus = cpus
        self.startup_timeout = startup_timeout
        self.base_dir = base_dir
        self.keep = keep
        self.node = socket.gethostname().split(".")[0]
        self.root: Path | None = None
        self.conf: Path | None = None
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._pid_files: dict[str, Path] = {}
        self._bin: dict[str, str] = {}

    # -- context manager -------------------------------------------------

    def __enter__(self) -> SlurmCluster:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- paths and environment -------------------------------------------

    def _path(self, *parts: str) -> Path:
        assert self.root is not None, "cluster not started"
        return self.root.joinpath(*parts)

    @property
    def munge_socket(self) -> Path:
        """Path of the private munge socket."""
        return self._path("munge", "munge.socket")

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """Environment for Slurm client commands and jobs of this cluster.

        Parameters
        ----------
        extra : mapping of str to str, optional
            Variables to add or override.

        Returns
        -------
        dict of str to str
            A copy of ``os.environ`` with ``SLURM_CONF`` pointing at the private
            configuration, the Open MPI root permission variables and the
            harness marker; variables of an outer Slurm job are dropped.
        """
        env = {
            key: value
            for key, value in os.environ.items()
            # An outer allocation's SLURM_* (e.g. when pytest itself runs in a
            # job) would make sbatch/srun talk about the wrong job.
            if not key.startswith(("SLURM_", "SBATCH_", "SRUN_", "SALLOC_"))
        }
        env.update(ROOT_MPI_ENV)
        env["SLURM_CONF"] = str(self.conf)
        env[MARKER_VAR] = str(self.root)
        if extra:
            env.update(extra)
        return env

    # -- starting ----------------------------------------------------------

    def start(self) -> None:
        """Write the configuration and start munged, slurmctld and slurmd.

        Returns once ``sinfo`` reports the node idle. If anything fails midway,
        everything started so far is stopped and the folder removed.

        Raises
        ------
        SlurmClusterError
            A binary is missing, a daemon exits early, or the node does not
            become idle within ``startup_timeout`` seconds.
        """
        found = {name: _which(name) for name in REQUIRED_BINARIES}
        missing = [name for name, path in found.items() if path is None]
        if missing:
            raise SlurmClusterError(
                f"Slurm/munge binaries not found on PATH: {', '.join(missing)}. "
                "Install the Debian packages munge, slurmctld, slurmd and slurm-client "
                "(`make build` does)."
            )
        self._bin = {name: str(path) for name, path in found.items()}
        self.root = Path(tempfile.mkdtemp(prefix="tokensim-slurm-", dir=self.base_dir))
        # Safety net for callers that never call stop(): stop at interpreter exit.
        atexit.register(self.stop)
        try:
            # mkdtemp makes 0700; munge wants the folders above its socket to be
            # traversable by everybody (clients need not be root).
            self.root.chmod(0o755)
            self._start_munged()
            self._write_slurm_conf()
            self._start_slurm_daemon("slurmctld", [])
            self._wait_for(self._controller_answers, "slurmctld to answer `scontrol ping`")
            # -N: the node name, in case `hostname -s` and the node name differ.
            self._start_slurm_daemon("slurmd", ["-N", self.node])
            self._wait_for(self._node_idle, f"node {self.node} to become idle in sinfo")
        except BaseException:
            self.stop()
            raise

    def _start_munged(self) -> None:
        """Write a munge key and start a private munged on a private socket."""
        munge_dir = self._path("munge")
        # munged refuses a socket folder that others cannot traverse or can write.
        munge_dir.mkdir(mode=0o755)
        munge_dir.chmod(0o755)
        key = munge_dir / "munge.key"
        # munged rejects a key readable by group/others; 1024 random bytes is the
        # size `mungekey` makes.
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        pid_file = munge_dir / "munged.pid"
        self._pid_files["munged"] = pid_file
        cmd = [
            self._bin["munged"],
            "--foreground",  # keep the Popen pid the daemon's pid
            # --force: start even if a stale socket exists, and do not abort on
            # munge's "insecure" checks of folders it does not own, e.g. /tmp.
            "--force",
            f"--socket={self.munge_socket}",
            f"--key-file={key}",
            f"--pid-file={pid_file}",
            f"--log-file={munge_dir / 'munged.log'}",
            f"--seed-file={munge_dir / 'munged.seed'}",
            "--num-threads=2",
        ]
        self._popen("munged", cmd, self._path("munge", "munged.out"))
        self._wait_for(self.munge_socket.exists, "munged to create its socket", "munged")

    def _write_slurm_conf(self) -> None:
        """Write ``slurm.conf`` and an empty plugin stack file."""
        for sub in ("state", "spool", "log", "run", "tmp"):
            self._path(sub).mkdir(mode=0o755)
        plugstack = self._path("plugstack.conf")
        # The default /etc/slurm/plugstack.conf includes site SPANK plugins; a
        # test cluster should not load them.
        plugstack.write_text("# no SPANK plugins in the test cluster\n")
        # No cgroup.conf: with proctrack/linuxproc and task/none (below) no
        # plugin uses cgroups, and slurmd runs without the file.
        self._pid_files["slurmctld"] = self._path("run", "slurmctld.pid")
        self._pid_files["slurmd"] = self._path("run", "slurmd.pid")
        # The controller listens on 127.0.0.1 only and both ports are picked
        # fresh, so several clusters (or a system Slurm) do not collide.
        lines = [
            "ClusterName=tokensim-test",
            f"SlurmctldHost={self.node}(127.0.0.1)",
            f"SlurmctldPort={_free_port()}",
            f"SlurmdPort={_free_port()}",
            # Daemons and jobs run as root: the test machines are root-only.
            "SlurmUser=root",
            "SlurmdUser=root",
            # Private munge daemon; cred/munge reads the same AuthInfo socket.
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={self.munge_socket}",
            # All state, spool, logs and pid files under the temporary folder.
            f"StateSaveLocation={self._path('state')}",
            f"SlurmdSpoolDir={self._path('spool')}",
            f"SlurmctldPidFile={self._pid_files['slurmctld']}",
            f"SlurmdPidFile={self._pid_files['slurmd']}",
            f"SlurmctldLogFile={self._path('log', 'slurmctld.log')}",
            f"SlurmdLogFile={self._path('log', 'slurmd.log')}",
            f"TmpFS={self._path('tmp')}",
            f"PlugStackConfig={plugstack}",
            "SlurmctldDebug=info",
            "SlurmdDebug=info",
            # The default /usr/bin/mail is not installed; no mail from tests.
            "MailProg=/bin/true",
            # No cgroups in containers: track job processes through /proc
            # (parent pids) and do no CPU binding or task containment.
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "JobAcctGatherType=jobacct_gather/none",
            # No slurmdbd: no accounting (so no sacct) and no job completion log.
            "AccountingStorageType=accounting_storage/none",
            "JobCompType=jobcomp/none",
            # Allocate single cores, so two 1-task jobs can share the node.
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core",
            # Let the node declare the CPUs below even if the machine has fewer.
            "SlurmdParameters=config_overrides",
            # Plain srun starts plain processes; run.sbatch asks for --mpi=pmix.
            "MpiDefault=none",
            # Keep finished jobs visible to `scontrol show job` for 10 minutes
            # (without slurmdbd that is the only record of their final state).
            "MinJobAge=600",
            # Bring the node back into service on its own after a restart.
            "ReturnToService=2",
            # Plain FIFO; backfill would only add delay.
            "SchedulerType=sched/builtin",
            # Start batch jobs right after submission instead of up to 3 s later
            # (the default batch_sched_delay), which adds up over many tests.
            "SchedulerParameters=batch_sched_delay=0",
            # Kill the rest of a job step quickly once one task ends badly.
            "KillWait=5",
            "InactiveLimit=0",
            f"NodeName={self.node} NodeAddr=127.0.0.1 CPUs={self.cpus} "
            "RealMemory=1024 State=UNKNOWN",
            f"PartitionName={self.partition} Nodes={self.node} Default=YES "
            "MaxTime=INFINITE State=UP",
        ]
        self.conf = self._path("slurm.conf")
        self.conf.write_text("\n".join(lines) + "\n")

    def _start_slurm_daemon(self, name: str, args: Sequence[str]) -> None:
        """Start ``slurmctld`` or ``slurmd`` in the foreground on the private conf."""
        # -D: stay in the foreground so the Popen pid is the daemon's pid.
        cmd = [self._bin[name], "-D", "-f", str(self.conf), *args]
        self._popen(name, cmd, self._path("log", f"{name}.out"))

    def _popen(self, name: str, cmd: Sequence[str], out: Path) -> None:
        """Start one daemon with its output in ``out``."""
        with open(out, "wb") as stream:
            self._procs[name] = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=stream,
                stderr=subprocess.STDOUT,
                env=self.env(),
                # Own session: a Ctrl-C in the terminal reaches pytest, whose
                # cleanup then stops the daemons in order.
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )

    def _wait_for(self, ready: Callable[[], bool], what: str, daemon: str | None = None) -> None:
        """Poll ``ready()`` until true; fail early if a started daemon died."""
        deadline = time.monotonic() + self.startup_timeout
        while True:
            if ready():
                return
            for name, proc in self._procs.items():
                if proc.poll() is not None:
                    raise SlurmClusterError(
                        f"{name} exited with status {proc.returncode} while waiting for "
                        f"{what}.\n{self.daemon_log(name)}"
                    )
            if time.monotonic() > deadline:
                names = [daemon] if daemon else list(self._procs)
                details = "\n".join(self.daemon_log(n) for n in names)
                raise SlurmClusterError(
                    f"timed out after {self.startup_timeout:.0f} s waiting for {what}.\n{details}"
                )
            time.sleep(0.2)

    def daemon_log(self, name: str) -> str:
        """Return the tail of a daemon's log files, for error messages.

        Parameters
        ----------
        name : {"munged", "slurmctld", "slurmd"}
            The daemon.

        Returns
        -------
        str
            The last lines of its log file and of its captured output.
        """
        logs = {
            "munged": [self._path("munge", "munged.log"), self._path("munge", "munged.out")],
            "slurmctld": [self._path("log", "slurmctld.log"), self._path("log", "slurmctld.out")],
            "slurmd": [self._path("log", "slurmd.log"), self._path("log", "slurmd.out")],
        }[name]
        return "\n".join(f"--- {path}:\n{_tail(path)}" for path in logs)

    def _controller_answers(self) -> bool:
        proc = self._run(["scontrol", "ping"], check=False)
        return proc.returncode == 0 and "UP" in proc.stdout

    def _node_idle(self) -> bool:
        proc = self._run(["sinfo", "-h", "-N", "-n", self.node, "-o", "%T"], check=False)
        return proc.returncode == 0 and proc.stdout.strip().rstrip("*") == "idle"

    # -- client commands ----------------------------------------------------

    def _run(
        self,
        cmd: Sequence[str],
        check: bool = True,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        timeout: float = 30.0,
    ) -> subprocess.CompletedProcess[str]:
        """Run a Slurm client command against this cluster."""
        proc = subprocess.run(
            [self._bin.get(cmd[0], cmd[0]), *cmd[1:]],
            capture_output=True,
            text=True,
            env=self.env(env),
            cwd=cwd,
            timeout=timeout,
            check=False,
        )
        if check and proc.returncode != 0:
            raise SlurmClusterError(
                f"`{' '.join(cmd)}` failed with status {proc.returncode}:\n"
                f"{proc.stdout}{proc.stderr}"
            )
        return proc

    def command(self, *args: str) -> str:
        """Run a Slurm client command (e.g. ``sinfo``) and return its stdout.

        Parameters
        ----------
        *args : str
            The command and its arguments.

        Returns
        -------
        str
            Standard output.

        Raises
        ------
        SlurmClusterError
            The command exits with a non-zero status.
        """
        return self._run(args).stdout

    def submit(
        self,
        script: str | os.PathLike[str],
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        sbatch_args: Sequence[str] = (),
        cwd: str | os.PathLike[str] | None = None,
    ) -> int:
        """Submit a batch script with ``sbatch --parsable``.

        Parameters
        ----------
        script : str or Path
            The batch script.
        args : sequence of str, optional
            Arguments for the script.
        env : mapping of str to str, optional
            Extra environment variables; the job sees all of ``self.env(env)``
            (``--export=ALL``), including the Open MPI root permission variables.
        sbatch_args : sequence of str, optional
            Options for ``sbatch`` itself (e.g. ``--ntasks=2``, ``--output=...``).
        cwd : str or Path, optional
            Folder to submit from; it becomes the job's working folder and
            ``SLURM_SUBMIT_DIR``.

        Returns
        -------
        int
            The job id.
        """
        cmd = ["sbatch", "--parsable", "--export=ALL", *sbatch_args, str(script), *args]
        out = self._run(cmd, env=env, cwd=cwd).stdout.strip()
        # --parsable prints "jobid" or "jobid;cluster".
        return int(out.split(";")[0])

    def job_info(self, job_id: int) -> dict[str, str] | None:
        """Return the ``scontrol show job -o`` fields of a job.

        Parameters
        ----------
        job_id : int
            Slurm job id.

        Returns
        -------
        dict of str to str or None
            The fields, or None if the controller no longer knows the job.
        """
        proc = self._run(["scontrol", "show", "job", "-o", str(job_id)], check=False)
        if proc.returncode != 0 or not proc.stdout.strip():
            return None
        return _parse_record(proc.stdout.strip().splitlines()[0])

    def wait(self, job_id: int, timeout: float = 120.0, poll: float = 0.5) -> JobResult:
        """Poll a job until it reaches a terminal state.

        Parameters
        ----------
        job_id : int
            Slurm job id.
        timeout : float, optional
            Seconds to wait; the job is cancelled if it has not ended by then.
        poll : float, optional
            Seconds between polls.

        Returns
        -------
        JobResult
            Final state and exit code; ``result.output()`` gives the job output.

        Raises
        ------
        SlurmClusterError
            The job did not end within ``timeout`` or vanished from the controller.
        """
        deadline = time.monotonic() + timeout
        while True:
            # None: a busy controller did not answer, or it forgot the job; both
            # are retried until the deadline (MinJobAge keeps ended jobs known).
            fields = self.job_info(job_id)
            state = fields.get("JobState", "") if fields else "UNKNOWN"
            if fields and state in TERMINAL_STATES:
                code, _, sig = fields.get("ExitCode", "0:0").partition(":")
                return JobResult(job_id, state, int(code or 0), int(sig or 0), fields)
            if time.monotonic() > deadline:
                self._run(["scancel", str(job_id)], check=False)
                reason = fields.get("Reason") if fields else "scontrol does not know the job"
                raise SlurmClusterError(
                    f"job {job_id} still {state} after {timeout:.0f} s (cancelled); "
                    f"reason: {reason}.\n{self.daemon_log('slurmctld')}\n"
                    f"{self.daemon_log('slurmd')}"
                )
            time.sleep(poll)

    # -- stopping -------------------------------------------------------------

    def stop(self) -> None:
        """Cancel jobs, stop the daemons by pid and remove the folder.

        Safe to call more than once, and after a partial start.
        """
        if self.root is None:
            return
        atexit.unregister(self.stop)
        if "slurmctld" in self._procs and self._procs["slurmctld"].poll() is None:
            # Cancel first so slurmd's step daemons end their jobs themselves.
            with contextlib.suppress(Exception):
                self._run(["scancel", "--full", f"--user={os.getuid()}"], check=False, timeout=10)
                deadline = time.monotonic() + 15
                while time.monotonic() < deadline:
                    out = self._run(["squeue", "-h", "-o", "%i"], check=False, timeout=10)
                    if out.returncode != 0 or not out.stdout.strip():
                        break
                    time.sleep(0.3)
        # Reverse start order: slurmd, slurmctld, then munged (both need it).
        for name in ("slurmd", "slurmctld", "munged"):
            proc = self._procs.get(name)
            if proc is not None:
                self._terminate(proc.pid, proc)
            # The pid file names the same process unless the daemon forked; a
            # pid from a file is only signalled if it carries our marker, so a
            # recycled pid of some other process is never touched.
            for pid in self._pids_from_file(name) - {proc.pid if proc else -1}:
                if pid in self._marked_pids():
                    self._terminate(pid, None)
        # slurmstepd and job processes are reparented away from slurmd; find any
        # left by the marker in their environment and end them too.
        for pid in self._marked_pids():
            self._terminate(pid, None)
        self._procs.clear()
        if not self.keep:
            shutil.rmtree(self.root, ignore_errors=True)
        self.root = None

    def _pids_from_file(self, name: str) -> set[int]:
        """Pid recorded in a daemon's pid file, if any."""
        path = self._pid_files.get(name)
        try:
            return {int(path.read_text().split()[0])} if path else set()
        except (OSError, ValueError, IndexError):
            return set()

    def _marked_pids(self) -> list[int]:
        """Pids of live processes whose environment carries this cluster's marker."""
        marker = f"{MARKER_VAR}={self.root}".encode()
        me = os.getpid()
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == me:
                continue
            try:
                environ = (entry / "environ").read_bytes()
            except OSError:
                continue
            if marker in environ.split(b"\0"):
                pids.append(int(entry.name))
        return pids

    @staticmethod
    def _terminate(pid: int, proc: subprocess.Popen[bytes] | None, grace: float = 10.0) -> None:
        """SIGTERM a process, then SIGKILL it if it is still alive after ``grace``."""

        def alive() -> bool:
            if proc is not None:
                return proc.poll() is None
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return False
            except PermissionError:
                return True
            # A zombie (not our child) counts as gone.
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
            except OSError:
                return False
            return stat.rpartition(")")[2].split()[0] != "Z"

        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
            if not alive():
                return
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
            deadline = time.monotonic() + wait
            while alive() and time.monotonic() < deadline:
                time.sleep(0.1)
