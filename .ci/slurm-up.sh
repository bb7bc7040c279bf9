#!/usr/bin/env bash
# Start a private single-node SLURM cluster for tests and CI.
#
#   .ci/slurm-up.sh STATE_DIR          # then: eval "$(.ci/slurm-up.sh STATE_DIR)"
#
# Runs its own munged, slurmctld and slurmd. Every key, socket, config, state,
# spool, pid and log file lives under STATE_DIR, so the system's own SLURM
# and munge set-up (/etc/slurm, /etc/munge, /run/munge) is neither used nor
# changed, and several clusters can coexist on one machine. Client tools find the cluster through
# SLURM_CONF; STATE_DIR/bin holds an srun that restores it inside Snakemake's
# jobs (see below). The two `export` lines for both are all this script prints
# on stdout; everything else goes to stderr. Safe to run twice: daemons
# already running for STATE_DIR are kept. Stop with .ci/slurm-down.sh STATE_DIR.
#
# Exit status: 0 cluster up; 1 it did not come up (daemon log tails on
# stderr); 2 the SLURM/munge binaries are missing and cannot be installed
# here; 64 usage.
#
# Environment: SLURM_UP_TIMEOUT (seconds to wait for the node, default 60),
# SLURM_UP_PORT (first slurmctld port to try, default 6817; slurmd gets the
# next one), SLURM_UP_MIN_JOB_AGE (default 600).
set -euo pipefail

log() { echo "slurm-up: $*" >&2; }
die() { log "$*"; exit "${2:-1}"; }

[[ $# -eq 1 && -n "$1" ]] || die "usage: $0 STATE_DIR" 64
mkdir -p "$1"
STATE_DIR=$(cd "$1" && pwd -P)
TIMEOUT=${SLURM_UP_TIMEOUT:-60}
MIN_JOB_AGE=${SLURM_UP_MIN_JOB_AGE:-600}
PARTITION=debug

CONF=$STATE_DIR/slurm.conf
RUN=$STATE_DIR/run
LOGS=$STATE_DIR/log
MUNGE_DIR=$STATE_DIR/munge
MUNGE_KEY=$MUNGE_DIR/munge.key
MUNGE_SOCKET=$MUNGE_DIR/munge.socket
MUNGE_PID=$RUN/munged.pid
CTLD_PID=$RUN/slurmctld.pid
SLURMD_PID=$RUN/slurmd.pid

# A unix socket path longer than sun_path (108 bytes) cannot be bound.
(( ${#MUNGE_SOCKET} <= 100 )) ||
    die "STATE_DIR is too deep: munge socket path '$MUNGE_SOCKET' is ${#MUNGE_SOCKET} characters (at most 100)"

# --- root ----------------------------------------------------------------------
# slurmd must run as root (it starts each job as its submitting user). A CI
# runner that is not root but has passwordless sudo reruns this script as root.
if [[ $(id -u) -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        exec sudo -n env "PATH=$PATH" "SLURM_UP_TIMEOUT=$TIMEOUT" \
            "SLURM_UP_MIN_JOB_AGE=$MIN_JOB_AGE" "SLURM_UP_PORT=${SLURM_UP_PORT:-6817}" \
            bash "$0" "$STATE_DIR"
    fi
    die "a SLURM cluster needs root (slurmd), and passwordless sudo is not available" 2
fi

# --- binaries ----------------------------------------------------------------
have_binaries() {
    local b
    for b in slurmctld slurmd sinfo sbatch squeue scancel scontrol srun munged munge; do
        command -v "$b" >/dev/null 2>&1 || return 1
    done
}
# The daemons live in sbin, which a non-login PATH may lack.
export PATH=$PATH:/usr/sbin:/sbin
if ! have_binaries; then
    command -v apt-get >/dev/null 2>&1 || die "SLURM/munge binaries are missing and apt-get is not available" 2
    log "installing slurm-wlm and munge with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 || die "apt-get update failed; cannot install slurm-wlm" 2
    apt-get install -y -qq slurm-wlm munge >&2 || die "apt-get install slurm-wlm munge failed" 2
    have_binaries || die "slurm-wlm installed but its binaries are still missing" 2
fi

# --- helpers -----------------------------------------------------------------
# alive NAME PIDFILE: the pid file names a live process whose command is NAME
# (guards against a stale pid file whose pid was reused).
alive() {
    local pid
    [[ -s $2 ]] || return 1
    pid=$(<"$2")
    [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null &&
        [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$1" ]]
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

show_logs() {
    local f
    for f in "$LOGS/munged.log" "$LOGS/slurmctld.log" "$LOGS/slurmd.log"; do
        [[ -f $f ]] || continue
        echo "----- tail $f -----" >&2
        tail -n 25 "$f" >&2
    done
    if [[ -n ${SLURM_CONF:-} ]]; then
        echo "----- sinfo -----" >&2
        sinfo -N -o '%N %T %E' >&2 2>&1 || true
    fi
}

fail() { log "$*"; show_logs; log "daemons may still run: stop them with .ci/slurm-down.sh $STATE_DIR"; exit 1; }

# wait_for SECONDS DESCRIPTION CMD...: poll CMD every 0.5 s.
wait_for() {
    local deadline=$((SECONDS + $1)) what=$2
    shift 2
    until "$@"; do
        (( SECONDS < deadline )) || fail "timed out after ${TIMEOUT}s waiting for $what"
        sleep 0.5
    done
}

mkdir -p "$RUN" "$LOGS" "$MUNGE_DIR" "$STATE_DIR/ctld-state" "$STATE_DIR/slurmd-spool"
# Other users' sbatch must reach the socket; the key itself stays mode 400.
chmod 755 "$MUNGE_DIR"

# --- munge -------------------------------------------------------------------
if [[ ! -s $MUNGE_KEY ]]; then
    # munged insists on a private key owned by the user it runs as.
    (umask 077 && dd if=/dev/urandom of="$MUNGE_KEY.tmp" bs=1024 count=1 status=none)
    mv "$MUNGE_KEY.tmp" "$MUNGE_KEY"
    chmod 400 "$MUNGE_KEY"
fi
if ! alive munged "$MUNGE_PID"; then
    rm -f "$MUNGE_SOCKET" "$MUNGE_SOCKET.lock"
    # --force: accept a STATE_DIR under /tmp and a key owned by root.
    munged --force --socket="$MUNGE_SOCKET" --key-file="$MUNGE_KEY" \
        --pid-file="$MUNGE_PID" --log-file="$LOGS/munged.log" \
        --seed-file="$MUNGE_DIR/munged.seed" >&2 || fail "munged did not start"
fi
munge_ok() { munge -n -S "$MUNGE_SOCKET" 2>/dev/null | unmunge -S "$MUNGE_SOCKET" >/dev/null 2>&1; }
wait_for "$TIMEOUT" "munged to answer on $MUNGE_SOCKET" munge_ok

# --- slurm.conf ----------------------------------------------------------------
# Rewritten only while no SLURM daemon of this STATE_DIR runs, so a second call
# never changes the ports or paths under a running cluster.
if ! alive slurmctld "$CTLD_PID" && ! alive slurmd "$SLURMD_PID"; then
    port=${SLURM_UP_PORT:-6817}
    while port_in_use "$port" || port_in_use $((port + 1)); do
        port=$((port + 2))
        (( port < ${SLURM_UP_PORT:-6817} + 200 )) || die "no free pair of ports for slurmctld/slurmd"
    done
    node=$(hostname -s)
    # The machine's CPUs: GNU nproc also obeys OMP_NUM_THREADS / OMP_THREAD_LIMIT, which a
    # caller's environment may set for its own process (a 1-CPU node runs jobs one by one).
    cpus=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)
    mem_total_mb=$(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo)
    # Leave 1 GB to the OS and the daemons; at least 512 MB for jobs.
    real_mb=$(( mem_total_mb > 1536 ? mem_total_mb - 1024 : 512 ))
    user=$(id -un)
    cat >"$CONF.tmp" <<EOF
# Written by .ci/slurm-up.sh: a private single-node cluster for tests.
ClusterName=datalign-test
# NodeAddr/SlurmctldHost address 127.0.0.1 so no DNS is needed.
SlurmctldHost=$node(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=$user
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE_SOCKET
MpiDefault=none
SwitchType=switch/none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
ReturnToService=2
# Finished jobs stay visible to squeue this long: the Snakemake SLURM
# executor polls with squeue when accounting (sacct) is off.
MinJobAge=$MIN_JOB_AGE
KillWait=5
InactiveLimit=0
Waittime=0
MailProg=/bin/true
StateSaveLocation=$STATE_DIR/ctld-state
SlurmdSpoolDir=$STATE_DIR/slurmd-spool
SlurmctldPidFile=$CTLD_PID
SlurmdPidFile=$SLURMD_PID
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
NodeName=$node NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$real_mb State=UNKNOWN
PartitionName=$PARTITION Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
    mv "$CONF.tmp" "$CONF"
fi
export SLURM_CONF=$CONF

# The Snakemake slurm-jobstep plugin (0.6) strips every SLURM_* variable but the
# job's identity, SLURM_CONF included, before its nested `srun`, which then looks
# for /etc/slurm/slurm.conf. An srun early on PATH that restores SLURM_CONF keeps
# this cluster private (jobs inherit PATH through sbatch --export=ALL).
mkdir -p "$STATE_DIR/bin"
# (Searched without our own bin, which a second call may find on PATH already.)
real_srun=$(PATH=$(tr ':' '\n' <<<"$PATH" | grep -vxF "$STATE_DIR/bin" | paste -sd:) command -v srun)
cat >"$STATE_DIR/bin/srun.tmp" <<WRAPPER
#!/bin/sh
# Written by .ci/slurm-up.sh: srun for the cluster of $STATE_DIR.
SLURM_CONF=\${SLURM_CONF:-$CONF}
export SLURM_CONF
exec $real_srun "\$@"
WRAPPER
chmod 755 "$STATE_DIR/bin/srun.tmp"
mv "$STATE_DIR/bin/srun.tmp" "$STATE_DIR/bin/srun"

# --- daemons -------------------------------------------------------------------
if ! alive slurmctld "$CTLD_PID"; then
    rm -f "$CTLD_PID"
    # -i: start even if saved state from an earlier run cannot be read.
    slurmctld -i -f "$CONF" >&2 || fail "slurmctld did not start"
    wait_for "$TIMEOUT" "slurmctld to write $CTLD_PID" alive slurmctld "$CTLD_PID"
fi
ctld_ok() { scontrol ping 2>/dev/null | grep -q 'is UP'; }
wait_for "$TIMEOUT" "slurmctld to answer scontrol ping" ctld_ok

if ! alive slurmd "$SLURMD_PID"; then
    rm -f "$SLURMD_PID"
    slurmd -f "$CONF" >&2 || fail "slurmd did not start"
    wait_for "$TIMEOUT" "slurmd to write $SLURMD_PID" alive slurmd "$SLURMD_PID"
fi
# A second call may find jobs running: mixed/allocated count as up too.
node_ok() { sinfo -h -p "$PARTITION" -o '%t' 2>/dev/null | grep -Eqx 'idle|mix|alloc|comp'; }
wait_for "$TIMEOUT" "the node in partition '$PARTITION' to become idle" node_ok

{
    echo "munged $(<"$MUNGE_PID")"
    echo "slurmctld $(<"$CTLD_PID")"
    echo "slurmd $(<"$SLURMD_PID")"
} >"$STATE_DIR/pids.tmp"
mv "$STATE_DIR/pids.tmp" "$STATE_DIR/pids"
log "cluster up: partition '$PARTITION', $(sinfo -h -p "$PARTITION" -o '%N %c CPUs %m MB %t')"
printf 'export SLURM_CONF=%q\n' "$CONF"
printf 'export PATH=%q:"$PATH"\n' "$STATE_DIR/bin"
