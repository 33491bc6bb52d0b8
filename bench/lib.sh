# Shared by the bench scripts (sourced): timing helpers and a private dockerd.
# shellcheck shell=bash

now() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
ms() { awk -v ns="$1" 'BEGIN {printf "%.0f", ns/1e6}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.2f", a/b; else print "-"}'; }

# start_dockerd DIR: a private dockerd under DIR that touches neither the host firewall nor
# the host's Docker; stopped when the script exits. Sets D=(docker -H ...) for it.
start_dockerd() {
    local dd=$1
    mkdir -p "$dd"
    dockerd --iptables=false --ip-forward=false --ip-masq=false --bridge=none \
        --data-root "$dd/data" --exec-root "$dd/exec" --pidfile "$dd/pid" \
        -H "unix://$dd/docker.sock" > "$dd/log" 2>&1 &
    DOCKERD_PID=$!
    trap 'kill $DOCKERD_PID 2>/dev/null; wait $DOCKERD_PID 2>/dev/null || true' EXIT
    D=(/usr/bin/docker -H "unix://$dd/docker.sock")
    for _ in $(seq 100); do "${D[@]}" version > /dev/null 2>&1 && return 0; sleep 0.3; done
    echo "dockerd did not start: see $dd/log" >&2
    return 1
}
