# shellcheck shell=bash
# Locate (and, when missing, fetch) the fail2ban reference that ferroban's
# tests and benchmarks compare against.
#
#   source scripts/f2b-env.sh     # from another script (bash, set -euo pipefail)
#   bash scripts/f2b-env.sh       # just make sure it is there; prints the root
#
# The reference is Debian's fail2ban package (1.0.2), unpacked with `dpkg -x`
# into $FERROBAN_F2B_ROOT (default /tmp/f2b/root). Nothing is installed: no
# service, no configuration under /etc, no firewall change. fail2ban is GPL,
# so its files live only there, outside the repository, and are never
# committed.
#
# After sourcing:
#   FERROBAN_F2B_ROOT      exported; $FERROBAN_F2B_ROOT/etc/fail2ban is the config
#   FERROBAN_F2B_PYTHON    exported; the interpreter that runs it
#                          (/usr/bin/python3 when present, else python3)
#   f2b_regex ARGS...      runs the reference fail2ban-regex with ARGS
#
# Knobs: FERROBAN_F2B_ROOT, FERROBAN_F2B_PYTHON,
#        FERROBAN_F2B_VERSION (version prefix required, default 1.0.2;
#        set it empty to accept whatever apt offers).

export FERROBAN_F2B_ROOT="${FERROBAN_F2B_ROOT:-/tmp/f2b/root}"
# Debian's own interpreter is what Debian's fail2ban runs under (and, built
# with PGO/LTO, it is also ~15% faster than a self-built python3 on PATH).
if [[ -z "${FERROBAN_F2B_PYTHON:-}" ]]; then
	if [[ -x /usr/bin/python3 ]]; then
		FERROBAN_F2B_PYTHON=/usr/bin/python3
	else
		FERROBAN_F2B_PYTHON=python3
	fi
fi
export FERROBAN_F2B_PYTHON
: "${FERROBAN_F2B_VERSION=1.0.2}"

f2b_log() { printf 'f2b-env: %s\n' "$*" >&2; }

# True when the unpacked reference looks complete.
f2b_present() {
	[[ -f "$FERROBAN_F2B_ROOT/usr/bin/fail2ban-regex" &&
		-d "$FERROBAN_F2B_ROOT/usr/lib/python3/dist-packages/fail2ban" &&
		-f "$FERROBAN_F2B_ROOT/etc/fail2ban/filter.d/sshd.conf" ]]
}

# Download fail2ban's .deb with apt and unpack it into $FERROBAN_F2B_ROOT.
f2b_fetch() {
	local work deb version
	if ! command -v apt-get >/dev/null || ! command -v dpkg-deb >/dev/null; then
		f2b_log "apt-get/dpkg-deb not found: cannot fetch the fail2ban reference"
		return 1
	fi
	work="$(mktemp -d "${TMPDIR:-/tmp}/f2b-fetch.XXXXXX")"
	# apt's download sandbox user (_apt) must be able to write here.
	chmod 0755 "$work"
	if [[ "$(id -u)" -eq 0 ]] && id _apt >/dev/null 2>&1; then
		chown _apt "$work" 2>/dev/null || true
	fi
	f2b_log "fetching Debian's fail2ban package into $FERROBAN_F2B_ROOT"
	if ! (cd "$work" && apt-get download -q fail2ban >&2); then
		# A fresh machine has no package lists yet: update once, then retry.
		f2b_log "apt-get download failed; running apt-get update and retrying"
		if [[ "$(id -u)" -ne 0 ]]; then
			f2b_log "apt-get update needs root: run 'sudo apt-get update' and retry"
			rm -rf "$work"
			return 1
		fi
		apt-get update -q >&2
		(cd "$work" && apt-get download -q fail2ban >&2)
	fi
	deb="$(find "$work" -maxdepth 1 -name 'fail2ban_*.deb' -print -quit)"
	if [[ -z "$deb" ]]; then
		f2b_log "no fail2ban_*.deb was downloaded"
		rm -rf "$work"
		return 1
	fi
	version="$(dpkg-deb -f "$deb" Version)"
	if [[ -n "$FERROBAN_F2B_VERSION" && "$version" != "$FERROBAN_F2B_VERSION"* ]]; then
		f2b_log "apt offers fail2ban $version, the reference is $FERROBAN_F2B_VERSION"
		f2b_log "(set FERROBAN_F2B_VERSION= to accept it anyway)"
		rm -rf "$work"
		return 1
	fi
	# Unpack beside the target, then move into place, so an interrupted
	# fetch never leaves a half-populated root that f2b_present accepts.
	mkdir -p "$(dirname "$FERROBAN_F2B_ROOT")"
	local staging="$FERROBAN_F2B_ROOT.partial.$$"
	rm -rf "$staging"
	if ! dpkg-deb -x "$deb" "$staging"; then
		rm -rf "$work" "$staging"
		return 1
	fi
	rm -rf "$FERROBAN_F2B_ROOT"
	mv "$staging" "$FERROBAN_F2B_ROOT" || return 1
	rm -rf "$work"
	f2b_log "fail2ban $version unpacked into $FERROBAN_F2B_ROOT"
}

f2b_regex() {
	PYTHONPATH="$FERROBAN_F2B_ROOT/usr/lib/python3/dist-packages${PYTHONPATH:+:$PYTHONPATH}" \
		"$FERROBAN_F2B_PYTHON" "$FERROBAN_F2B_ROOT/usr/bin/fail2ban-regex" "$@"
}

f2b_ensure() {
	if ! f2b_present; then
		f2b_fetch || return 1
	fi
	if ! f2b_present; then
		f2b_log "$FERROBAN_F2B_ROOT does not hold a usable fail2ban tree"
		return 1
	fi
	# Smoke test: the reference must run with this interpreter.
	if ! f2b_regex --version >/dev/null 2>&1; then
		f2b_log "reference fail2ban-regex does not run with $FERROBAN_F2B_PYTHON:"
		f2b_regex --version >&2 || true
		return 1
	fi
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
	# Executed rather than sourced.
	set -euo pipefail
	f2b_ensure
	printf '%s\n' "$FERROBAN_F2B_ROOT"
else
	f2b_ensure
fi
