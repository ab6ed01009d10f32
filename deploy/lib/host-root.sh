# Sourced by deploy/fresh-machine-check.sh and docker/build-and-smoke.sh: what a Debian 12 root
# made with mmdebstrap takes from this host, so that it reaches the same package mirrors as a new
# machine on this network would, and how the processes running in such a root are stopped.

# host_apt_sources: this host's enabled apt source files, each one an mmdebstrap MIRROR argument.
host_apt_sources=()
for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
  if [[ -s "$file" ]] && grep -q '^[^#]' "$file"; then host_apt_sources+=("$file"); fi
done

# host_apt_options: --aptopt for each of this host's apt.conf.d files that sets Acquire::
# options (proxies, validity checks, index targets): the network side of apt, not its policy.
host_apt_options=()
for file in /etc/apt/apt.conf.d/*; do
  if grep -q '^[[:space:]]*Acquire::' "$file"; then host_apt_options+=("--aptopt=$file"); fi
done

# signal_processes_rooted_in SIGNAL DIR: every process whose root directory is DIR or below it
# (chrooted into it, or into a root nested in it).
signal_processes_rooted_in() {
  local signal=$1 dir=$2 pid process_root
  for pid in /proc/[0-9]*; do
    process_root=$(readlink "$pid/root" 2> /dev/null) || continue
    if [[ "$process_root" == "$dir" || "$process_root" == "$dir"/* ]]; then
      kill "-$signal" "${pid#/proc/}" 2> /dev/null || true
    fi
  done
}
