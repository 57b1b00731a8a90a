#!/usr/bin/env bash
# Fetch the newer fail2ban releases that ferroban's 1.1.x compatibility tests read: Debian's
# fail2ban 1.1.0 (trixie) and 1.1.1 (sid), each unpacked with `dpkg-deb -x` into
# $FERROBAN_F2B_NEWER/<upstream version> (default /tmp/f2b/newer/1.1.0 and .../1.1.1).
#
#   bash scripts/f2b-newer.sh        # make sure both are there; prints their roots
#
# Like the 1.0.2 reference (scripts/f2b-env.sh) nothing is installed and nothing of fail2ban
# (GPL) enters the repository. This machine's apt knows only its own release, so the two
# packages come through a private apt state: a sources file naming the suites above on the
# Debian mirror this machine's own apt sources already use, checked against Debian's archive
# keyring, with lists and cache in a scratch folder that is removed afterwards. The system's
# apt configuration and package lists are not touched. Needs root (apt's download sandbox).
#
# The versions are pinned (FERROBAN_F2B_NEWER_PACKAGES, "version:suite" words); when a suite no
# longer carries its pinned version, the suite's current fail2ban is taken and the script says
# which version that is.
#
# Tests: crates/ferroban/tests/samples.rs (`newer_releases_pass_their_samples`) and
# crates/ferroban/tests/banaction_paths.rs read these trees.
set -euo pipefail

newer="${FERROBAN_F2B_NEWER:-/tmp/f2b/newer}"
read -r -a packages <<<"${FERROBAN_F2B_NEWER_PACKAGES:-1.1.0-8:trixie 1.1.1-1:sid}"

log() { printf 'f2b-newer: %s\n' "$*" >&2; }

# "1.1.0-8" -> "1.1.0"
upstream() { printf '%s\n' "${1%-*}"; }

present() {
	[[ -f "$1/usr/bin/fail2ban-regex" && -f "$1/etc/fail2ban/filter.d/sshd.conf" &&
		-d "$1/usr/lib/python3/dist-packages/fail2ban/tests/files/logs" ]]
}

missing=()
for p in "${packages[@]}"; do
	present "$newer/$(upstream "${p%%:*}")" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
	for p in "${packages[@]}"; do printf '%s\n' "$newer/$(upstream "${p%%:*}")"; done
	exit 0
fi

if [[ "$(id -u)" -ne 0 ]]; then
	log "needs root to fetch ${missing[*]} (apt's sandbox); run as root, or unpack Debian's"
	log "fail2ban packages of those versions into $newer/<version> yourself"
	exit 1
fi

# The mirror this machine's apt already uses (deb822 or one-line sources).
mirror=""
for f in /etc/apt/sources.list.d/*.sources; do
	[[ -f "$f" ]] || continue
	mirror="$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' "$f")"
	[[ -n "$mirror" ]] && break
done
if [[ -z "$mirror" && -f /etc/apt/sources.list ]]; then
	mirror="$(awk '$1 == "deb" && $2 !~ /security/ {for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' /etc/apt/sources.list)"
fi
if [[ -z "$mirror" ]]; then
	log "no Debian mirror found in /etc/apt/sources.list{,.d}: cannot fetch ${missing[*]}"
	exit 1
fi
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
if [[ ! -f "$keyring" ]]; then
	log "$keyring not found (package debian-archive-keyring): cannot check the archive"
	exit 1
fi

suites=()
for p in "${missing[@]}"; do suites+=("${p#*:}"); done
work="$(mktemp -d "${TMPDIR:-/tmp}/f2b-newer.XXXXXX")"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/dl"
cat >"$work/sources.sources" <<EOF
Types: deb
URIs: $mirror
Suites: ${suites[*]}
Components: main
Signed-By: $keyring
EOF
chmod -R a+rX "$work"
if id _apt >/dev/null 2>&1; then chown -R _apt "$work"; fi
apt_opts=(
	-q
	-o "Dir::Etc::SourceList=$work/sources.sources"
	-o "Dir::Etc::SourceParts=$work/none"
	-o "Dir::State::Lists=$work/lists"
	-o "Dir::Cache=$work/cache"
	-o "Acquire::Languages=none"
	-o "APT::Get::List-Cleanup=false"
	-o "Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false"
	-o "Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false"
	-o "Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled=false"
)
log "reading the package lists of ${suites[*]} (private apt state in $work)"
apt-get "${apt_opts[@]}" update >&2

for p in "${missing[@]}"; do
	version="${p%%:*}" suite="${p#*:}"
	rm -f "$work"/dl/*.deb
	if ! (cd "$work/dl" && apt-get "${apt_opts[@]}" download "fail2ban=$version" >&2); then
		log "$suite no longer has fail2ban $version; taking the suite's current one"
		(cd "$work/dl" && apt-get "${apt_opts[@]}" download "fail2ban/$suite" >&2)
	fi
	deb="$(find "$work/dl" -maxdepth 1 -name 'fail2ban_*.deb' -print -quit)"
	[[ -n "$deb" ]] || {
		log "no fail2ban package downloaded from $suite"
		exit 1
	}
	got="$(dpkg-deb -f "$deb" Version)"
	target="$newer/$(upstream "$version")"
	staging="$target.partial.$$"
	rm -rf "$staging"
	mkdir -p "$newer"
	dpkg-deb -x "$deb" "$staging"
	rm -rf "$target"
	mv "$staging" "$target"
	log "fail2ban $got ($suite) unpacked into $target"
done
for p in "${packages[@]}"; do printf '%s\n' "$newer/$(upstream "${p%%:*}")"; done
