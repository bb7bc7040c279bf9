#!/usr/bin/env bash
# Stop the private SLURM cluster that .ci/slurm-up.sh started in STATE_DIR.
#
#   .ci/slurm-down.sh STATE_DIR
#
# Cancels its remaining jobs, then stops slurmd, slurmctld and munged by the
# process ids recorded in STATE_DIR (never by name, so other clusters and
# system daemons are left alone) and waits for them to exit (SIGKILL after
# SLURM_DOWN_TIMEOUT seconds, default 30). Safe to run when nothing runs.
set -uo pipefail

log() { echo "slurm-down: $*" >&2; }

[[ $# -eq 1 && -n "$1" ]] || { log "usage: $0 STATE_DIR"; exit 64; }
[[ -d $1 ]] || { log "no state directory $1: nothing to stop"; exit 0; }
STATE_DIR=$(cd "$1" && pwd -P)
TIMEOUT=${SLURM_DOWN_TIMEOUT:-30}
export PATH=$PATH:/usr/sbin:/sbin

# The daemons run as root; slurm-up.sh used passwordless sudo where not root.
if [[ $(id -u) -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        exec sudo -n env "PATH=$PATH" "SLURM_DOWN_TIMEOUT=$TIMEOUT" bash "$0" "$STATE_DIR"
    fi
    log "not root and no passwordless sudo: only daemons of this user can be stopped"
fi

# pid_of NAME: the live pid of daemon NAME, from its own pid file or else from
# STATE_DIR/pids; empty if it is not running. The command name must match, so a
# stale file whose pid was reused by another process is ignored.
pid_of() {
    local name=$1 pid="" file=$STATE_DIR/run/$1.pid
    [[ -s $file ]] && pid=$(<"$file")
    if [[ ! $pid =~ ^[0-9]+$ && -s $STATE_DIR/pids ]]; then
        pid=$(awk -v n="$name" '$1 == n {print $2}' "$STATE_DIR/pids")
    fi
    [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null &&
        [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$name" ]] && echo "$pid"
}

stop() {
    local name=$1 pid deadline
    pid=$(pid_of "$name") || true
    [[ -n $pid ]] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + TIMEOUT))
    while kill -0 "$pid" 2>/dev/null; do
        if (( SECONDS >= deadline )); then
            log "$name (pid $pid) ignored SIGTERM for ${TIMEOUT}s: sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            sleep 0.5
            break
        fi
        sleep 0.2
    done
    log "stopped $name (pid $pid)"
}

# Cancel jobs first so that no job step outlives the daemons; scancel only
# reaches this cluster's slurmctld because SLURM_CONF points at it.
if [[ -f $STATE_DIR/slurm.conf && -n $(pid_of slurmctld) ]]; then
    export SLURM_CONF=$STATE_DIR/slurm.conf
    jobs=$(squeue -h -t PD,R,CG -o %i 2>/dev/null)
    if [[ -n $jobs ]]; then
        # shellcheck disable=SC2086  # one argument per job id
        scancel $jobs 2>/dev/null || true
        for _ in $(seq 1 $((TIMEOUT * 2))); do
            [[ -z $(squeue -h -t PD,R,CG -o %i 2>/dev/null) ]] && break
            sleep 0.5
        done
    fi
fi

stop slurmd
stop slurmctld
stop munged
rm -f "$STATE_DIR/pids"
exit 0
