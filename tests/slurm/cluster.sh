#!/usr/bin/env bash
# A real single-node SLURM cluster (Debian slurmctld + slurmd + munge) for CI and for
# trying profiles/slurm on a workstation.
#
#   cluster.sh up          install packages if missing, write config, start daemons, smoke test
#   cluster.sh down        stop the daemons this script started, delete the network namespace
#   cluster.sh status      show daemons, nodes and jobs; exit 0 only if the cluster is usable
#   cluster.sh exec CMD..  run CMD where it can reach the cluster (in its network namespace)
#
# Why a network namespace: slurmctld/slurmd have no bind-address option and listen on
# 0.0.0.0, so they run in netns "slurmci", which has only a loopback interface. Clients must
# run there too (`cluster.sh exec`). We enter it with nsenter, never `ip netns exec`: the
# latter remounts /sys, hides the cgroup tree, and slurmd 22.05 then refuses to start.
#
# The configuration lives in $SLURM_CI_DIR/etc; `up` links it into /etc/slurm (the
# Snakemake jobstep deletes SLURM_* variables, SLURM_CONF included, so only the default path
# works inside jobs) and refuses to replace a slurm.conf that is not its own. `down` removes
# the links again: the slurm executor plugin runs `scontrol show config` whenever snakemake
# starts, even for local runs, and a slurm.conf naming a dead controller costs ~9 s there,
# while a missing slurm.conf fails at once.
#
# Exit status 3 means "this machine cannot host the cluster" (not root, no network
# namespaces, packages not installable); tests turn it into a skip.
#
# Knobs: SLURM_CI_NETNS (default slurmci; empty = no namespace, daemons on all interfaces),
# SLURM_CI_DIR (/var/lib/slurm-ci), SLURM_CI_PARTITIONS (space separated, the first is the
# default; "debug"), SLURM_CI_MEM_MARGIN_MB (1024), SLURM_CI_FAKE_GPUS (0-4; 1), and
# SLURM_CI_CPUS / SLURM_CI_MEM_MB to announce a bigger node than the machine is (slurmd is
# told to trust slurm.conf), so that a production profile's requests fit unchanged.
set -euo pipefail

NETNS=${SLURM_CI_NETNS-slurmci}
CI_DIR=${SLURM_CI_DIR:-/var/lib/slurm-ci}
PARTITIONS=${SLURM_CI_PARTITIONS:-debug}
MEM_MARGIN_MB=${SLURM_CI_MEM_MARGIN_MB:-1024}
FAKE_CPUS=${SLURM_CI_CPUS:-}
FAKE_MEM_MB=${SLURM_CI_MEM_MB:-}
FAKE_GPUS=${SLURM_CI_FAKE_GPUS:-1}
RUN_DIR=$CI_DIR/run
LOG_DIR=$CI_DIR/log
CONF_DIR=$CI_DIR/etc
SYSTEM_CONF_DIR=/etc/slurm
MUNGE_SOCKET=/run/munge/munge.socket.2
PACKAGES=(slurmctld slurmd slurm-client munge)
UNSUPPORTED=3

log() { echo "cluster.sh: $*" >&2; }
unsupported() {
    log "unsupported: $*"
    exit "$UNSUPPORTED"
}

# Link our slurm.conf/gres.conf into /etc/slurm unless a real configuration is there.
link_config() {
    local name
    for name in slurm.conf gres.conf; do
        [[ $(readlink "$SYSTEM_CONF_DIR/$name" || true) == "$CONF_DIR/$name" ]] && continue
        if [[ -e $SYSTEM_CONF_DIR/$name || -L $SYSTEM_CONF_DIR/$name ]]; then
            unsupported "$SYSTEM_CONF_DIR/$name exists and is not ours; not replacing it"
        fi
    done
    mkdir -p "$SYSTEM_CONF_DIR"
    for name in slurm.conf gres.conf; do
        ln -sfn "$CONF_DIR/$name" "$SYSTEM_CONF_DIR/$name"
    done
}

unlink_config() {
    local name
    for name in slurm.conf gres.conf; do
        if [[ $(readlink "$SYSTEM_CONF_DIR/$name" || true) == "$CONF_DIR/$name" ]]; then
            rm -f "$SYSTEM_CONF_DIR/$name"
        fi
    done
}

# Run a command inside the cluster's network namespace (or directly without one).
in_ns() {
    if [[ -n $NETNS ]]; then
        nsenter --net="/run/netns/$NETNS" "$@"
    else
        "$@"
    fi
}

# True if pidfile $1 names a live process whose command name is $2.
pid_alive() {
    local pid
    [[ -s $1 ]] || return 1
    pid=$(<"$1")
    [[ -r /proc/$pid/comm && $(<"/proc/$pid/comm") == "$2" ]]
}

install_packages() {
    command -v slurmctld slurmd scontrol munged >/dev/null && return
    command -v apt-get >/dev/null || unsupported "slurm is not installed and there is no apt-get"
    log "installing ${PACKAGES[*]}"
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends "${PACKAGES[@]}"; } >"$CI_DIR/apt.log" 2>&1; then
        tail -5 "$CI_DIR/apt.log" >&2
        unsupported "apt-get could not install ${PACKAGES[*]} (log: $CI_DIR/apt.log)"
    fi
}

make_netns() {
    [[ -n $NETNS ]] || return 0
    if [[ ! -e /run/netns/$NETNS ]]; then
        ip netns add "$NETNS" 2>"$LOG_DIR/netns.err" \
            || unsupported "cannot create network namespace: $(<"$LOG_DIR/netns.err")"
    fi
    in_ns ip link set lo up
    # glibc's getaddrinfo(AI_ADDRCONFIG) fails when 127.0.0.1 is the only IPv4 address, and
    # slurmctld then cannot even resolve its own address; a second loopback address fixes it.
    in_ns ip -4 addr show dev lo | grep -q 127.0.0.2 || in_ns ip addr add 127.0.0.2/8 dev lo
}

# Node topology as `slurmd -C` sees it (so slurmd does not complain), or an announced
# bigger node that slurmd accepts because of SlurmdParameters=config_overrides.
node_topology() {
    if [[ -n $FAKE_CPUS ]]; then
        echo "CPUs=$FAKE_CPUS Boards=1 SocketsPerBoard=1 CoresPerSocket=$FAKE_CPUS ThreadsPerCore=1"
    else
        slurmd -C | head -1 | grep -o 'CPUs=.*ThreadsPerCore=[0-9]*'
    fi
}

node_memory_mb() {
    local mem_kb
    if [[ -n $FAKE_MEM_MB ]]; then
        echo "$FAKE_MEM_MB"
    else
        mem_kb=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)
        echo $((mem_kb / 1024 - MEM_MARGIN_MB))
    fi
}

render_slurm_conf() {
    local host gres="" overrides="" part default=YES
    host=$(hostname -s)
    ((FAKE_GPUS > 0)) && gres="Gres=gpu:$FAKE_GPUS"
    [[ -n $FAKE_CPUS$FAKE_MEM_MB ]] && overrides="SlurmdParameters=config_overrides"
    cat <<EOF
# Written by clipsae tests/slurm/cluster.sh; rewritten on every \`up\`.
ClusterName=clipsae-ci
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=6817
SlurmdPort=6818
AuthType=auth/munge
CredType=cred/munge
MailProg=/bin/true
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2,bf_interval=2
DefMemPerCPU=500
ReturnToService=2
# The plugin's squeue status check needs finished jobs to stay visible: MinJobAge must be
# at least 3x slurm-init-seconds-before-status-checks, or it silently falls back to sacct.
MinJobAge=300
KillWait=5
InactiveLimit=0
SlurmdTimeout=60
SlurmctldTimeout=60
MessageTimeout=10
StateSaveLocation=$CI_DIR/ctld
SlurmdSpoolDir=$CI_DIR/d
SlurmctldPidFile=$RUN_DIR/slurmctld.pid
SlurmdPidFile=$RUN_DIR/slurmd.pid
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
GresTypes=gpu
$overrides
NodeName=$host NodeAddr=127.0.0.1 $(node_topology) RealMemory=$(node_memory_mb) $gres State=UNKNOWN
EOF
    for part in $PARTITIONS; do
        echo "PartitionName=$part Nodes=ALL Default=$default MaxTime=INFINITE State=UP"
        default=NO
    done
}

# Returns 0 if the configuration changed.
write_config() {
    local changed=1
    mkdir -p "$CONF_DIR" "$CI_DIR/ctld" "$CI_DIR/d" "$RUN_DIR" "$LOG_DIR"
    update_file "$CONF_DIR/slurm.conf" "$(render_slurm_conf)" && changed=0
    update_file "$CONF_DIR/gres.conf" "$(render_gres_conf)" && changed=0
    return "$changed"
}

# Write $2 into file $1; returns 0 if the content changed.
update_file() {
    [[ -f $1 && $(<"$1") == "$2" ]] && return 1
    printf '%s\n' "$2" >"$1"
}

# A count-only GPU is rejected by gres/gpu ("count reported lower than configured"); any
# character device, even /dev/null, makes a fake GPU schedulable. One device per GPU.
render_gres_conf() {
    local devices=(/dev/null /dev/zero /dev/full /dev/urandom) i
    ((FAKE_GPUS <= ${#devices[@]})) || unsupported "at most ${#devices[@]} fake GPUs"
    for ((i = 0; i < FAKE_GPUS; i++)); do
        echo "NodeName=$(hostname -s) Name=gpu File=${devices[i]}"
    done
}

munge_works() { [[ -S $MUNGE_SOCKET ]] && munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; }

# Reuse a munged that is already serving (a workstation's own); otherwise start one and
# record its pid so that `down` stops only ours.
start_munge() {
    munge_works && return
    install -d -o munge -g munge -m 0755 /run/munge
    [[ -s /etc/munge/munge.key ]] || runuser -u munge -- mungekey --create
    runuser -u munge -- munged --pid-file=/run/munge/munged.pid
    cp /run/munge/munged.pid "$RUN_DIR/munged.pid"
    for _ in $(seq 50); do munge_works && return; sleep 0.1; done
    log "munged did not come up"
    return 1
}

start_daemon() {
    local name=$1
    pid_alive "$RUN_DIR/$name.pid" "$name" && return
    in_ns "$name"
}

node_state() { in_ns sinfo -h -N -o %T 2>/dev/null | head -1; }

wait_for_idle_node() {
    local state
    for _ in $(seq 60); do
        state=$(node_state)
        case $state in
        idle | mixed | allocated) return 0 ;;
        down* | drain* | inval*) in_ns scontrol update nodename="$(hostname -s)" state=resume || true ;;
        esac
        sleep 0.5
    done
    log "node never became idle (state '$state'); see $LOG_DIR/"
    return 1
}

smoke_test() {
    in_ns srun -t 1 hostname >/dev/null
    in_ns sbatch --wait -t 1 -o /dev/null --wrap true >/dev/null
    if ((FAKE_GPUS > 0)); then
        [[ $(in_ns srun -t 1 --gpus=1 printenv CUDA_VISIBLE_DEVICES) == 0 ]]
    fi
}

cmd_up() {
    [[ $EUID -eq 0 ]] || unsupported "must run as root"
    mkdir -p "$CI_DIR" "$LOG_DIR"
    install_packages
    make_netns
    link_config
    local changed=1
    write_config && changed=0
    start_munge
    if [[ $changed == 0 ]]; then
        # Node size and partitions need fresh daemons; `scontrol reconfigure` is not enough.
        stop_pidfile "$RUN_DIR/slurmd.pid" slurmd
        stop_pidfile "$RUN_DIR/slurmctld.pid" slurmctld
    fi
    start_daemon slurmctld
    start_daemon slurmd
    wait_for_idle_node
    smoke_test
    log "up: $(in_ns sinfo -h -o '%P %D %T %G' | tr '\n' ';')"
}

# Stop the process in pidfile $1 if it is still the $2 we started.
stop_pidfile() {
    local pidfile=$1 name=$2 pid
    if pid_alive "$pidfile" "$name"; then
        pid=$(<"$pidfile")
        kill "$pid"
        for _ in $(seq 100); do [[ -d /proc/$pid ]] || break; sleep 0.1; done
        [[ -d /proc/$pid ]] && kill -KILL "$pid"
    fi
    rm -f "$pidfile"
}

cmd_down() {
    local jobs
    if pid_alive "$RUN_DIR/slurmctld.pid" slurmctld; then
        jobs=$(in_ns squeue -h -o %i 2>/dev/null || true)
        # shellcheck disable=SC2086 # one argument per job id
        [[ -z $jobs ]] || in_ns scancel --full $jobs || true
    fi
    stop_pidfile "$RUN_DIR/slurmd.pid" slurmd
    stop_pidfile "$RUN_DIR/slurmctld.pid" slurmctld
    stop_pidfile "$RUN_DIR/munged.pid" munged
    if [[ -n $NETNS && -e /run/netns/$NETNS ]]; then
        ip netns delete "$NETNS"
    fi
    unlink_config
    log "down"
}

cmd_status() {
    local name ok=0
    for name in munged slurmctld slurmd; do
        if pid_alive "$RUN_DIR/$name.pid" "$name"; then
            echo "$name: running (pid $(<"$RUN_DIR/$name.pid"))"
        elif [[ $name == munged ]] && munge_works; then
            echo "munged: running (not started by this script)"
        else
            echo "$name: stopped"
            ok=1
        fi
    done
    if [[ $ok == 0 ]]; then
        in_ns sinfo
        in_ns squeue
    fi
    return "$ok"
}

case ${1:-} in
up) cmd_up ;;
down) cmd_down ;;
status) cmd_status ;;
exec)
    shift
    in_ns "$@"
    ;;
*)
    echo "usage: $0 up|down|status|exec CMD..." >&2
    exit 2
    ;;
esac
