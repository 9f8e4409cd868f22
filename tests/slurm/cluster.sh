#!/usr/bin/env bash
# A throwaway one-node SLURM cluster on localhost with a fake GPU, for the integration
# test of profiles/slurm (tests/test_slurm.py). Root on Debian 12 (as in CI).
#
#   tests/slurm/cluster.sh install        apt-get install munge slurmctld slurmd slurm-client
#   tests/slurm/cluster.sh start          write the configs, start munged, slurmctld, slurmd
#   tests/slurm/cluster.sh stop           stop the daemons this script started (by pid)
#   tests/slurm/cluster.sh run CMD...     install, start, run CMD, stop
#                                         (also when CMD or the start fails: trap)
#
# State, pid files, logs and a private munge socket live under $INTRACLASS_SLURM_DIR
# (default /tmp/intraclass-slurm); slurm.conf and gres.conf go to /etc/slurm, because the
# jobs' own `srun` (run by the plugin inside each job, with SLURM_* variables removed,
# SLURM_CONF included) only finds the default path. The script refuses to overwrite an
# /etc/slurm/slurm.conf it did not write, and `stop` removes the two files again.
# Recipe (Debian 12, SLURM 22.05): the steps below and tests/slurm/slurm.conf.in.
#
# Settings (environment): INTRACLASS_SLURM_DIR, INTRACLASS_SLURM_GPUS (fake GPUs, 1 to 5; default 1),
# INTRACLASS_SLURM_CTLD_PORT (16817), INTRACLASS_SLURM_SLURMD_PORT (16818): not the
# standard 6817/6818, so that they never meet a real cluster's daemons.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
STATE="${INTRACLASS_SLURM_DIR:-/tmp/intraclass-slurm}"
[[ "$STATE" == /?* ]] || { echo "cluster.sh: INTRACLASS_SLURM_DIR must be an absolute path" >&2; exit 1; }
GPUS="${INTRACLASS_SLURM_GPUS:-1}"
CTLD_PORT="${INTRACLASS_SLURM_CTLD_PORT:-16817}"
SLURMD_PORT="${INTRACLASS_SLURM_SLURMD_PORT:-16818}"
PACKAGES=(munge slurmctld slurmd slurm-client)
ETC=/etc/slurm
MARK="# written by intraclass tests/slurm/cluster.sh"

die() { echo "cluster.sh: $*" >&2; exit 1; }

check_host() {
    [[ "$(id -u)" == 0 ]] || die "must run as root (it installs packages and starts daemons)"
    [[ -r /etc/debian_version ]] || die "needs Debian (apt packages ${PACKAGES[*]})"
}

install() {
    check_host
    local missing=()
    for pkg in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
            || missing+=("$pkg")
    done
    if ((${#missing[@]})); then
        command -v apt-get >/dev/null || die "apt-get not found"
        echo "cluster.sh: installing ${missing[*]}" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            "${missing[@]}" >/dev/null
    fi
    [[ -s /etc/munge/munge.key ]] || die "/etc/munge/munge.key missing (the munge package creates it)"
}

# running PID: PID is a process and not a zombie (a daemon that exited but whose parent
# has not reaped it yet is gone for our purposes)
running() { [[ -r "/proc/$1/status" ]] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status"; }

# alive PIDFILE: the pid in PIDFILE is a running process
alive() { [[ -s "$1" ]] && running "$(cat "$1")"; }

# wait_for SECONDS CMD...: poll CMD every 0.2 s until it succeeds
wait_for() {
    local deadline=$((SECONDS + $1)); shift
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || return 1
        sleep 0.2
    done
}

write_configs() {
    # What the node really has (slurmd refuses a config that promises more), less a
    # margin on memory for the daemons themselves.
    local hw cpus mem
    hw="$(slurmd -C | head -1)"
    cpus="$(sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' <<<"$hw")"
    mem="$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$hw")"
    mem=$((mem * 9 / 10))
    mkdir -p "$ETC"
    { echo "$MARK"; sed -e "s|@STATE@|$STATE|g" -e "s|@CPUS@|$cpus|g" -e "s|@MEM_MB@|$mem|g" \
        -e "s|@GPUS@|$GPUS|g" -e "s|@CTLD_PORT@|$CTLD_PORT|g" \
        -e "s|@SLURMD_PORT@|$SLURMD_PORT|g" "$HERE/slurm.conf.in"; } >"$ETC/slurm.conf"
    # The fake GPUs: character devices that exist everywhere (slurmd counts a GPU per
    # device file; SLURM then sets CUDA_VISIBLE_DEVICES in the job, which finds no CUDA).
    local devices=(/dev/null /dev/zero /dev/full /dev/random /dev/urandom)
    ((GPUS >= 1 && GPUS <= ${#devices[@]})) || die "INTRACLASS_SLURM_GPUS must be 1 to ${#devices[@]}"
    {
        echo "$MARK"
        local i
        for ((i = 0; i < GPUS; i++)); do
            echo "NodeName=localhost Name=gpu File=${devices[i]}"
        done
    } >"$ETC/gres.conf"
}

# ours FILE: FILE is absent or was written by this script
ours() { [[ ! -e "$1" ]] || head -1 "$1" | grep -qxF "$MARK"; }

remove_configs() {
    local f
    for f in "$ETC/slurm.conf" "$ETC/gres.conf"; do
        if [[ -e "$f" ]] && ours "$f"; then rm -f "$f"; fi
    done
}

start() {
    check_host
    command -v slurmctld >/dev/null || die "SLURM is not installed (run: $0 install)"
    if alive "$STATE/run/slurmctld.pid" || alive "$STATE/run/slurmd.pid"; then
        die "a test cluster is already running under $STATE (stop it: $0 stop)"
    fi
    # Start clean, but never wipe a directory this script did not make.
    if [[ -d "$STATE" && -n "$(ls -A "$STATE")" && ! -e "$STATE/.intraclass-slurm" ]]; then
        die "$STATE exists and was not made by this script; set INTRACLASS_SLURM_DIR"
    fi
    ours "$ETC/slurm.conf" && ours "$ETC/gres.conf" \
        || die "$ETC/slurm.conf or gres.conf exists and was not written by this script: this machine has its own SLURM"
    rm -rf "$STATE"
    mkdir -p "$STATE"/{run,log,slurmd,slurmctld,munge}
    touch "$STATE/.intraclass-slurm"
    # A failed start stops whatever it had started already.
    trap stop EXIT
    chown slurm:slurm "$STATE/slurmctld"
    chown munge:munge "$STATE/munge"
    chmod 0755 "$STATE/munge"  # clients need to reach the socket
    write_configs

    # munged refuses to start as root: run it as its own user, on a private socket.
    runuser -u munge -- munged --socket="$STATE/munge/munge.socket" \
        --pid-file="$STATE/munge/munged.pid" --log-file="$STATE/munge/munged.log" \
        --seed-file="$STATE/munge/munged.seed" \
        || die "munged failed to start: $(tail -3 "$STATE/munge/munged.log" 2>/dev/null)"
    wait_for 10 alive "$STATE/munge/munged.pid" || die "munged did not write its pid file"

    slurmctld || die "slurmctld failed to start: $(tail -5 "$STATE/log/slurmctld.log")"
    wait_for 20 alive "$STATE/run/slurmctld.pid" || die "slurmctld did not start"
    wait_for 20 scontrol ping || die "slurmctld does not answer: $(tail -5 "$STATE/log/slurmctld.log")"

    slurmd -N localhost || die "slurmd failed to start: $(tail -5 "$STATE/log/slurmd.log")"
    wait_for 20 alive "$STATE/run/slurmd.pid" || die "slurmd did not start"
    # The node is usable once it is idle (not unknown, down or drained).
    wait_for 30 bash -c "sinfo -h -N -o %T | grep -qx idle" \
        || die "node not idle: $(sinfo -N -o '%N %T %E' 2>&1); $(tail -5 "$STATE/log/slurmd.log")"
    trap - EXIT
    echo "cluster.sh: SLURM up (logs in $STATE/log)" >&2
}

# stop_pid PIDFILE NAME: TERM the daemon, wait up to 10 s, then KILL it.
stop_pid() {
    local pidfile="$1" name="$2" pid
    alive "$pidfile" || return 0
    pid="$(cat "$pidfile")"
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 10))
    while running "$pid" && ((SECONDS < deadline)); do sleep 0.2; done
    if running "$pid"; then
        echo "cluster.sh: $name ($pid) ignored SIGTERM; killing it" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
}

stop() {
    # Reverse start order; only the pids recorded under $STATE, i.e. what start() began.
    # Jobs still running under slurmd are cancelled first so no job outlives the cluster.
    if alive "$STATE/run/slurmctld.pid"; then
        scancel --full --user=root 2>/dev/null || true
    fi
    stop_pid "$STATE/run/slurmd.pid" slurmd
    stop_pid "$STATE/run/slurmctld.pid" slurmctld
    stop_pid "$STATE/munge/munged.pid" munged
    remove_configs
}

run() {
    (($#)) || die "usage: $0 run CMD [ARGS...]"
    install
    start
    trap stop EXIT
    "$@"
}

case "${1:-}" in
    install) install ;;
    start) start ;;
    stop) stop ;;
    run) shift; run "$@" ;;
    *) die "usage: $0 install | start | stop | run CMD [ARGS...]" ;;
esac
