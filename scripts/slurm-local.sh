#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, for vinfo's SLURM tests (issue #19).
#
#   scripts/slurm-local.sh install   apt-get install slurm-wlm and munge (Debian/Ubuntu, as root)
#   scripts/slurm-local.sh start     write the config under $VINFO_SLURM_DIR, start munged,
#                                    slurmctld and slurmd, wait until the node is idle
#   scripts/slurm-local.sh stop      stop the three daemons
#   scripts/slurm-local.sh env       print the export line that points sbatch & co. at it
#
# The cluster: one node named after this host with all its CPUs and memory, one partition
# "local" (a job gets 1 CPU and its share of the memory unless it asks), no cgroups (ProctrackType=proctrack/linuxproc, TaskPlugin=task/none), accounting
# off; state, logs and the config live in $VINFO_SLURM_DIR (default /tmp/vinfo-slurm).
set -euo pipefail
DIR="${VINFO_SLURM_DIR:-/tmp/vinfo-slurm}"
CONF="$DIR/slurm.conf"

install() {
    if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null \
            || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
                 apt-get install -y -qq slurm-wlm munge >/dev/null; }
    fi
}

write_config() {
    local host cpus memory user
    host=$(hostname -s)
    cpus=$(nproc)
    memory=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
    user=$(id -un)
    mkdir -p "$DIR/state" "$DIR/spool" "$DIR/log"
    cat > "$CONF" <<CONFIG
ClusterName=vinfo-local
SlurmctldHost=$host(127.0.0.1)
SlurmUser=$user
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
MinJobAge=300
DefMemPerCPU=$(( memory / cpus ))
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=local Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONFIG
}

start() {
    install
    write_config
    export SLURM_CONF="$CONF"
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    if ! pgrep -x munged >/dev/null; then
        [ -s /etc/munge/munge.key ] || /usr/sbin/mungekey --create --force 2>/dev/null \
            || dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
        chmod 0400 /etc/munge/munge.key
        munged --force
    fi
    pgrep -f "slurmctld -f $CONF" >/dev/null || slurmctld -f "$CONF"
    pgrep -f "slurmd -f $CONF" >/dev/null || slurmd -f "$CONF"
    for _ in $(seq 1 60); do
        if sinfo -h -o "%t" 2>/dev/null | grep -qE "^(idle|mix|alloc)"; then
            echo "slurm-local: one-node cluster up (SLURM_CONF=$CONF)"
            return 0
        fi
        sleep 1
    done
    echo "slurm-local: the node did not become idle; see $DIR/log" >&2
    sinfo >&2 || true
    return 1
}

stop() {
    pkill -f "slurmd -f $CONF" 2>/dev/null || true
    pkill -f "slurmctld -f $CONF" 2>/dev/null || true
    echo "slurm-local: stopped"
}

case "${1:-}" in
    install) install ;;
    start) start ;;
    stop) stop ;;
    env) echo "export SLURM_CONF=$CONF" ;;
    *) echo "usage: $0 install|start|stop|env" >&2; exit 2 ;;
esac
