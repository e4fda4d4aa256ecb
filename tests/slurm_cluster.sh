#!/usr/bin/env bash
# A throwaway single-node Slurm cluster for the SLURM test (tests/workflow/test_slurm.py), kept under one state
# directory. Its slurm.conf is also linked from /etc/slurm/slurm.conf, because the jobstep executor strips
# SLURM_CONF from the environment of the srun it runs inside each job; an existing configuration there that
# is not ours is never touched (start exits 3). `stop` kills only the daemons this script started, by the
# PIDs it recorded, and removes only its own link.
#
#   tests/slurm_cluster.sh start STATE_DIR   install slurm-wlm + munge if missing (root + apt-get), start
#                                            munged, slurmctld and slurmd, wait until the node is idle;
#                                            prints SLURM_CONF=<file> on its last line
#   tests/slurm_cluster.sh stop STATE_DIR    kill the recorded daemons and wait for them to exit
#
# Exit status 3 from `start` means "cannot run here" (not root, no apt-get, the install failed): the test
# skips with the printed reason. Any other failure is an error.
set -euo pipefail

cmd=${1:?usage: slurm_cluster.sh start|stop STATE_DIR}
state=$(realpath -m "${2:?usage: slurm_cluster.sh start|stop STATE_DIR}")

cannot() { echo "cannot run Slurm here: $*" >&2; exit 3; }

install_if_missing() {
    command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null && return
    [ "$(id -u)" = 0 ] || cannot "slurm-wlm/munge are not installed and this is not root"
    command -v apt-get >/dev/null || cannot "slurm-wlm/munge are not installed and there is no apt-get"
    # apt-get install fails on a machine whose package lists were never fetched.
    if ! compgen -G "/var/lib/apt/lists/*Packages*" >/dev/null; then
        apt-get update -q >"$state/apt.log" 2>&1 || cannot "apt-get update failed (see $state/apt.log)"
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends slurm-wlm munge \
        >>"$state/apt.log" 2>&1 || cannot "apt-get install slurm-wlm munge failed (see $state/apt.log)"
}

start_munge() {
    # slurm authenticates through munged; the Debian package leaves a key at /etc/munge/munge.key.
    if [ ! -s /etc/munge/munge.key ]; then
        [ "$(id -u)" = 0 ] || cannot "no munge key at /etc/munge/munge.key"
        /usr/sbin/mungekey --create >/dev/null 2>&1 || dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 2>/dev/null
        chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
    fi
    if munge -n >/dev/null 2>&1; then
        return  # a munged of the machine's own is already serving: use it, and leave it alone at stop
    fi
    mkdir -p /run/munge && chown munge:munge /run/munge
    # munged refuses to run as root; the package's user runs it, and we record its PID for `stop`.
    runuser -u munge -- /usr/sbin/munged --pid-file="/run/munge/munged.pid" \
        || { echo "munged did not start" >&2; exit 1; }
    for _ in $(seq 50); do
        munge -n >/dev/null 2>&1 && { cat /run/munge/munged.pid >"$state/munged.pid"; return; }
        sleep 0.1
    done
    echo "munged started but does not answer" >&2
    exit 1
}

write_conf() {
    local host cpus mem_mb
    host=$(hostname -s)
    cpus=$(nproc)
    # 90% of physical memory, so that --mem requests up to that are schedulable.
    mem_mb=$(awk '/MemTotal/ {printf "%d", $2 / 1024 * 0.9}' /proc/meminfo)
    mkdir -p "$state/ctld" "$state/spool"
    cat >"$state/slurm.conf" <<EOF
# Written by tests/slurm_cluster.sh: one node, no accounting database, no cgroups.
ClusterName=tempered-test
SlurmctldHost=$host
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/spool
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
SlurmctldLogFile=$state/slurmctld.log
SlurmdLogFile=$state/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
# Finished jobs stay visible to squeue for four hours: the executor's squeue status polling needs at least a few
# of its polling intervals, and the test looks every job of the whole run up afterwards, at the end of a test
# session that builds the Slurm subset first. An hour was too short: a 70-minute session on a shared machine
# looked up jobs finished 65 minutes before and found the first three purged.
MinJobAge=14400
ReturnToService=2
NodeName=$host CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=main Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
}

wait_idle() {
    for _ in $(seq 120); do
        if sinfo -h -o '%t' 2>/dev/null | grep -qx 'idle'; then return; fi
        sleep 0.5
    done
    echo "the Slurm node did not become idle; last state: $(sinfo -h -o '%t' 2>&1)" >&2
    tail -n 20 "$state/slurmctld.log" "$state/slurmd.log" >&2 || true
    exit 1
}

link_conf() {
    local etc=/etc/slurm/slurm.conf
    if [ -e "$etc" ] || [ -L "$etc" ]; then
        [ "$(readlink "$etc")" = "$state/slurm.conf" ] && return
        grep -q '^# Written by tests/slurm_cluster.sh' "$etc" 2>/dev/null \
            || cannot "$etc belongs to another Slurm configuration; not replacing it"
    fi
    mkdir -p /etc/slurm
    ln -sfn "$state/slurm.conf" "$etc"
}

case $cmd in
start)
    mkdir -p "$state"
    install_if_missing
    start_munge
    write_conf
    link_conf
    export SLURM_CONF=$state/slurm.conf
    slurmctld -c -i || { tail -n 20 "$state/slurmctld.log" >&2; exit 1; }   # -c: fresh state, no old jobs
    slurmd -c || { tail -n 20 "$state/slurmd.log" >&2; exit 1; }
    wait_idle
    echo "SLURM_CONF=$SLURM_CONF"
    ;;
stop)
    pids=()
    for name in slurmd slurmctld munged; do
        f=$state/$name.pid
        [ -s "$f" ] && pids+=("$(cat "$f")")
    done
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
    done
    rm -f "$state"/{slurmd,slurmctld,munged}.pid
    if [ "$(readlink /etc/slurm/slurm.conf 2>/dev/null)" = "$state/slurm.conf" ]; then
        rm -f /etc/slurm/slurm.conf
    fi
    ;;
*)
    echo "unknown command '$cmd' (expected start or stop)" >&2
    exit 2
    ;;
esac
