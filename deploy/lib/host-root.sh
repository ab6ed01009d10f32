# Sourced by deploy/fresh-machine-check.sh and docker/build-and-smoke.sh: a minimal Debian 12
# root made with mmdebstrap from this host's apt configuration, so that it reaches the same
# package mirrors as a new machine on this network would.

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

# make_host_root TARBALL [MMDEBSTRAP-OPTIONS...]: a minbase bookworm root as a tarball, from this
# host's apt sources and Acquire options.
make_host_root() {
  local tarball=$1
  shift
  mmdebstrap --quiet --mode=root --format=tar --variant=minbase "${host_apt_options[@]}" "$@" \
    bookworm "$tarball" "${host_apt_sources[@]}"
}
