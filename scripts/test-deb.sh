#!/usr/bin/env bash
# Build ferroban's Debian package and check it, without installing it on this machine.
#
#   scripts/test-deb.sh
#
# 1. installs cargo-deb if missing (cargo install --locked cargo-deb);
# 2. builds the package: cargo deb -p ferroban, a release build in $CARGO_TARGET_DIR (default
#    target/). With FERROBAN_DEB_NO_BUILD=1 it packages the release binary already in that
#    directory (cargo deb --no-build): crates/ferroban/tests/deb.rs does so when the suite
#    runs in release (scripts/test.sh), so no second release build (minutes on 2 cores) runs
#    and target/release/ferroban is not rewritten under the other tests' feet;
# 3. inspects it with dpkg-deb -I / -c: control fields, every file, conffiles, trigger,
#    maintainer scripts (sh -n);
# 4. unpacks it with dpkg-deb -x into a scratch root (never dpkg -i here) and runs
#    `ferroban --version`, `ferroban server -t -c <root>/etc/ferroban` (as shipped, and with
#    every jail of the template enabled), and the fail2ban-names switch against that root;
# 5. "installs" it in private mount, PID and network namespaces (root only): the unpacked /usr
#    and /etc are overlaid on the machine's, /run, /var/lib and /var/log are empty tmpfs as on
#    a fresh machine, so nothing outside the namespaces changes. There:
#    - systemd-analyze verify on the installed unit (any warning fails);
#    - with the shipped /etc/ferroban: the unit's ExecStart line verbatim, `ferroban client
#      status` without -s, the log file, a logrotate run with the packaged configuration
#      (flushlogs), ExecReload and ExecStop verbatim; the name switch and the postinst trigger
#      and prerm branches;
#    - when FERROBAN_GUIDE_DIR names a directory with the guide's jail.local and jail.d/
#      (deb.rs writes the guide's files of tests/guide.rs there), that configuration in
#      /etc/fail2ban, on a machine with nginx, sshd, ufw and FastAPI logs: ExecStart verbatim,
#      every jail up, the guide's status loop through `fail2ban-client`, ExecStop.
#
# Environment: CARGO_TARGET_DIR (where cargo deb builds), FERROBAN_DEB_NO_BUILD=1 (see 2.),
# FERROBAN_DEB_KEEP=DIR (copy the .deb there), FERROBAN_GUIDE_DIR (see above).
# Needs: cargo, dpkg-deb, and for step 5 root, unshare, mount (overlay, tmpfs); optional:
# systemd-analyze, logrotate (their checks are skipped, and said so, when missing).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

say() { echo "test-deb.sh: $*"; }
checks=0
ok() {
	checks=$((checks + 1))
	echo "test-deb.sh: ok: $*"
}
fail() {
	printf 'test-deb.sh: FAILED: %b\n' "$*" >&2
	exit 1
}

work="$(mktemp -d "${TMPDIR:-/tmp}/ferroban-deb.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# ---- 1. cargo-deb -----------------------------------------------------------------------
if ! cargo deb --version >/dev/null 2>&1; then
	say "cargo-deb not found; installing it with cargo install --locked cargo-deb"
	cargo install --locked cargo-deb
fi
say "$(cargo deb --version)"

# ---- 2. build ---------------------------------------------------------------------------
build_flags=()
if [[ "${FERROBAN_DEB_NO_BUILD:-0}" == 1 ]]; then
	# The caller built target/release/ferroban already (deb.rs, inside the release test run).
	build_flags=(--no-build)
	tdir="${CARGO_TARGET_DIR:-$repo/target}"
	[[ -x "$tdir/release/ferroban" ]] ||
		fail "FERROBAN_DEB_NO_BUILD=1 but $tdir/release/ferroban is not built"
fi
say "packaging: cargo deb -p ferroban ${build_flags[*]} (CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-<default>})"
start=$SECONDS
cargo deb -p ferroban "${build_flags[@]}" --output "$work/out/" >"$work/cargo-deb.log" 2>&1 ||
	{
		cat "$work/cargo-deb.log" >&2
		fail "cargo deb -p ferroban"
	}
deb="$(find "$work/out" -name 'ferroban_*.deb' | head -n1)"
[[ -f "$deb" ]] || fail "cargo deb produced no ferroban_*.deb in $work/out"
say "built $(basename "$deb") in $((SECONDS - start)) s"
if [[ -n "${FERROBAN_DEB_KEEP:-}" ]]; then
	mkdir -p "$FERROBAN_DEB_KEEP" && cp "$deb" "$FERROBAN_DEB_KEEP/"
fi

# ---- 3. inspect -------------------------------------------------------------------------
field() { dpkg-deb -f "$deb" "$1"; }
[[ "$(field Package)" == ferroban ]] || fail "Package is '$(field Package)'"
ok "Package: ferroban $(field Version) $(field Architecture)"
depends="$(field Depends)"
grep -Eq '(^|, )nftables($|[ ,])' <<<"$depends" || fail "Depends lacks nftables: $depends"
grep -Eq '(^|, )libc6' <<<"$depends" || fail "Depends lacks libc6 (dpkg-shlibdeps): $depends"
if grep -Eqi 'python|fail2ban' <<<"$depends $(field Recommends) $(field Pre-Depends)"; then
	fail "must not depend on Python or fail2ban: Depends: $depends; Recommends: $(field Recommends)"
fi
[[ -z "$(field Conflicts)$(field Breaks)$(field Replaces)" ]] ||
	fail "Conflicts/Breaks/Replaces must be empty: $(field Conflicts) $(field Breaks) $(field Replaces)"
ok "Depends: $depends (no Python, no fail2ban, conflicts with nothing)"

dpkg-deb -c "$deb" >"$work/contents"
has() { # has MODE PATH: the package contains PATH as a regular file with permissions MODE
	grep -Eq "^$1 (root/root|0/0) +[0-9]+ [0-9-]+ [0-9:]+ \./${2#/}\$" "$work/contents" ||
		fail "the package lacks $2 (mode $1); contents:\n$(cat "$work/contents")"
}
has -rwxr-xr-x /usr/bin/ferroban
has -rw-r--r-- /usr/lib/systemd/system/ferroban.service
has -rw-r--r-- /etc/logrotate.d/ferroban
has -rw-r--r-- /etc/ferroban/jail.local
has -rw-r--r-- /etc/ferroban/fail2ban.local
has -rwxr-xr-x /usr/share/ferroban/enable-fail2ban-names
has -rw-r--r-- /usr/share/doc/ferroban/README.Debian
if grep -Eq '\./usr/(local/)?s?bin/fail2ban-' "$work/contents"; then
	fail "the package must not ship fail2ban-* names (they are opt-in)"
fi
ok "files: binary, unit, logrotate, /etc/ferroban, name switch, docs; no fail2ban-* names"

ctrl="$work/control"
dpkg-deb -e "$deb" "$ctrl"
for f in /etc/ferroban/jail.local /etc/ferroban/fail2ban.local /etc/logrotate.d/ferroban; do
	grep -qx "$f" "$ctrl/conffiles" || fail "$f is not a conffile; conffiles: $(cat "$ctrl/conffiles")"
done
ok "conffiles: $(tr '\n' ' ' <"$ctrl/conffiles")"
for s in postinst prerm postrm; do
	[[ -x "$ctrl/$s" ]] || fail "maintainer script $s missing or not executable"
	sh -n "$ctrl/$s" || fail "maintainer script $s: syntax error"
	if grep -q '#DEBHELPER#' "$ctrl/$s"; then fail "$s: #DEBHELPER# was not replaced"; fi
done
grep -q 'deb-systemd-helper update-state ferroban.service' "$ctrl/postinst" ||
	fail "postinst lacks the systemd unit handling"
if grep -Eq 'deb-systemd-helper enable ferroban.service' "$ctrl/postinst" &&
	! grep -q 'was-enabled ferroban.service' "$ctrl/postinst"; then
	fail "postinst enables the unit on a first install (it must stay opt-in)"
fi
if grep -Eq 'deb-systemd-invoke (start|restart) ' "$ctrl/postinst"; then
	fail "postinst starts the unit (it must only try-restart a running one)"
fi
for n in fail2ban-client fail2ban-server fail2ban-regex; do
	grep -qx "interest-noawait /usr/bin/$n" "$ctrl/triggers" || fail "triggers lacks /usr/bin/$n"
done
ok "maintainer scripts parse; unit not enabled/started on install; file triggers on fail2ban-*"

# ---- 4. unpack and run ------------------------------------------------------------------
root="$work/root"
dpkg-deb -x "$deb" "$root"
bin="$root/usr/bin/ferroban"
version="$("$bin" --version)" || fail "ferroban --version"
[[ "$version" == "ferroban $(field Version | sed 's/-[^-]*$//')" ]] ||
	fail "ferroban --version says '$version', the package is $(field Version)"
ok "ferroban --version: $version"

"$bin" server -t -c "$root/etc/ferroban" >"$work/t.out" 2>&1 ||
	fail "ferroban server -t -c <root>/etc/ferroban:\n$(cat "$work/t.out")"
grep -q 'configuration test is successful' "$work/t.out" || fail "server -t:\n$(cat "$work/t.out")"
ok "ferroban server -t -c <root>/etc/ferroban"

# The template's jails are the real ones: enabled, every one of them loads.
mkdir -p "$work/all-on"
sed 's/^enabled = false$/enabled = true/' "$root/etc/ferroban/jail.local" >"$work/all-on/jail.local"
cp "$root/etc/ferroban/fail2ban.local" "$work/all-on/"
template_jails="$(grep -c '^enabled = true$' "$work/all-on/jail.local")"
((template_jails >= 13)) || fail "jail.local has $template_jails jails, expected 13 (the guide's 12 and recidive)"
"$bin" server -t -c "$work/all-on" >"$work/t-all.out" 2>&1 ||
	fail "jail.local with every jail enabled does not pass server -t:\n$(cat "$work/t-all.out")"
active="$(grep -c "^OK  *jail '" "$work/t-all.out" || true)"
((active == template_jails)) ||
	fail "$template_jails jails enabled, server -t lists $active:\n$(cat "$work/t-all.out")"
ok "jail.local with all $template_jails jails enabled passes server -t"

# The name switch, against the unpacked root (DPKG_ROOT).
sw="$root/usr/share/ferroban/enable-fail2ban-names"
DPKG_ROOT="$root" "$sw" >/dev/null || fail "enable-fail2ban-names on a clean root"
for n in fail2ban-server fail2ban-client fail2ban-regex; do
	[[ "$(readlink "$root/usr/local/bin/$n")" == /usr/bin/ferroban ]] || fail "no link $n"
done
DPKG_ROOT="$root" "$sw" --disable >/dev/null
[[ -z "$(ls -A "$root/usr/local/bin")" ]] || fail "--disable left $(ls "$root/usr/local/bin")"
echo "#!/bin/sh" >"$root/usr/bin/fail2ban-client" # as if fail2ban were installed
if DPKG_ROOT="$root" "$sw" 2>"$work/refuse.err"; then
	fail "enable-fail2ban-names did not refuse next to /usr/bin/fail2ban-client"
fi
grep -q '/usr/bin/fail2ban-client' "$work/refuse.err" || fail "refusal does not name the file: $(cat "$work/refuse.err")"
[[ -z "$(ls -A "$root/usr/local/bin")" ]] || fail "a refused switch created $(ls "$root/usr/local/bin")"
rm -f "$root/usr/bin/fail2ban-client"
ok "enable-fail2ban-names: creates, removes, refuses (changing nothing) next to fail2ban"

# ---- 5. installed view ------------------------------------------------------------------
if [[ "$(id -u)" -ne 0 ]]; then
	fail "step 5 (the installed package in namespaces) needs root; CI runs as root"
fi
for p in unshare mount; do command -v "$p" >/dev/null || fail "$p is missing (util-linux, mount)"; done

guide="$work/guide"
if [[ -n "${FERROBAN_GUIDE_DIR:-}" ]]; then
	[[ -f "$FERROBAN_GUIDE_DIR/jail.local" ]] || fail "FERROBAN_GUIDE_DIR=$FERROBAN_GUIDE_DIR has no jail.local"
	mkdir -p "$guide/jail.d"
	cp "$FERROBAN_GUIDE_DIR/jail.local" "$guide/"
	if [[ -d "$FERROBAN_GUIDE_DIR/jail.d" ]]; then cp "$FERROBAN_GUIDE_DIR"/jail.d/* "$guide/jail.d/"; fi
	# Jails the guide enables (sections with enabled = true, counted once).
	guide_jails="$(cat "$guide/jail.local" "$guide"/jail.d/* |
		awk '/^\[/{s=$0} /^enabled *= *true/{print s}' | sort -u | grep -vc '^\[DEFAULT\]')"
else
	guide_jails=skip
fi

cat >"$work/inside.sh" <<'INSIDE'
# Runs as PID 1 of fresh mount, PID and network namespaces (unshare). Everything it mounts or
# starts disappears with them.
set -euo pipefail
root="$1" work="$2" ctrl="$3" guide="$4" guide_jails="$5"
ok() { echo "test-deb.sh: ok: $*"; echo x >>"$work/inside.checks"; }
fail() {
	printf 'test-deb.sh: FAILED (installed view): %b\n' "$*" >&2
	exit 1
}

mount --make-rprivate /
ns="$work/ns"
mkdir -p "$ns"
mount -t tmpfs -o mode=0755 tmpfs "$ns"
mkdir -p "$ns"/{usr-up,usr-wk,etc-up,etc-wk,etc-hide}
# A fail2ban tree on this machine would be read before /etc/ferroban: hide it (whiteout).
if [[ -e /etc/fail2ban ]]; then mknod "$ns/etc-hide/fail2ban" c 0 0; fi
mount -t overlay overlay -o "lowerdir=$root/usr:/usr,upperdir=$ns/usr-up,workdir=$ns/usr-wk" /usr
mount -t overlay overlay \
	-o "lowerdir=$ns/etc-hide:$root/etc:/etc,upperdir=$ns/etc-up,workdir=$ns/etc-wk" /etc
[[ -x /usr/bin/ferroban && -f /etc/ferroban/jail.local && ! -e /etc/fail2ban ]] ||
	fail "the overlay does not show the package"

unit=/usr/lib/systemd/system/ferroban.service
if command -v systemd-analyze >/dev/null; then
	if ! out="$(systemd-analyze verify "$unit" 2>&1)" || [[ -n "$out" ]]; then
		fail "systemd-analyze verify $unit:\n$out"
	fi
	ok "systemd-analyze verify $unit: no error, no warning"
else
	echo "test-deb.sh: SKIPPED: systemd-analyze verify (systemd-analyze not installed)"
fi

# A fresh machine's state: empty /run, /var/lib, /var/log.
for d in /run /var/lib /var/log; do mount -t tmpfs -o mode=0755 tmpfs "$d"; done
if command -v ip >/dev/null; then ip link set lo up; fi

line() { # the command of a unit directive, checked to be a plain absolute command line
	local l
	l="$(grep "^$1=" "$unit" | cut -d= -f2-)"
	[[ "$(grep -c "^$1=" "$unit")" == 1 && "$l" == /* ]] || fail "$1 in $unit: '$l'"
	echo "$l"
}
read -ra exec_start <<<"$(line ExecStart)"
read -ra exec_stop <<<"$(line ExecStop)"
read -ra exec_reload <<<"$(line ExecReload)"
client() { /usr/bin/ferroban client "$@"; }

server_pid=""
start_unit() { # $1: label. As systemd would: directories, then ExecStart verbatim.
	install -d -m 0755 /run/ferroban      # RuntimeDirectory=ferroban
	install -d -m 0700 /var/lib/ferroban  # StateDirectory=ferroban
	"${exec_start[@]}" >"$work/server-$1.out" 2>&1 &
	server_pid=$!
	local i
	for i in $(seq 1 150); do
		if client -s /run/ferroban/ferroban.sock ping >/dev/null 2>&1; then
			ok "$1: ExecStart (${exec_start[*]}) answers ping after $((i / 5)).$((i % 5 * 2)) s"
			return
		fi
		kill -0 "$server_pid" 2>/dev/null ||
			fail "$1: ExecStart exited:\n$(cat "$work/server-$1.out")"
		sleep 0.2
	done
	fail "$1: no answer on /run/ferroban/ferroban.sock after 30 s:\n$(cat "$work/server-$1.out")"
}
stop_unit() { # $1: label. ExecStop verbatim; the server must exit 0 and remove its socket.
	"${exec_stop[@]}" >"$work/stop-$1.out" 2>&1 || fail "$1: ExecStop:\n$(cat "$work/stop-$1.out")"
	local i code
	for i in $(seq 1 100); do
		kill -0 "$server_pid" 2>/dev/null || break
		sleep 0.2
	done
	kill -0 "$server_pid" 2>/dev/null && fail "$1: still running 20 s after ExecStop"
	code=0
	wait "$server_pid" || code=$?
	[[ $code == 0 ]] || fail "$1: the server exited with $code:\n$(cat "$work/server-$1.out")"
	[[ ! -e /run/ferroban/ferroban.sock ]] || fail "$1: the socket is left after stop"
	ok "$1: ExecStop (${exec_stop[*]}): server exited 0, socket removed"
	rm -rf /run/ferroban # RuntimeDirectory is removed when the unit stops
}

# --- the package as shipped: /etc/ferroban, every jail disabled
/usr/bin/ferroban server -t >"$work/t-installed.out" 2>&1 ||
	fail "ferroban server -t (no -c):\n$(cat "$work/t-installed.out")"
grep -q '/etc/ferroban' "$work/t-installed.out" ||
	fail "server -t without -c did not use /etc/ferroban:\n$(cat "$work/t-installed.out")"
ok "ferroban server -t without -c reads /etc/ferroban"

start_unit shipped
[[ "$(cat /run/ferroban/ferroban.pid 2>/dev/null)" == "$server_pid" ]] ||
	fail "pid file /run/ferroban/ferroban.pid does not hold $server_pid"
status="$(client status 2>&1)" || fail "ferroban client status (no -s):\n$status"
grep -q 'Number of jail:' <<<"$status" || fail "ferroban client status:\n$status"
ok "ferroban client status (no -s, no -c) finds the daemon; pid file written"
[[ -s /var/log/ferroban.log ]] || fail "/var/log/ferroban.log is empty or missing"
ok "the daemon logs to /var/log/ferroban.log"

if command -v logrotate >/dev/null; then
	logrotate -f -s "$work/logrotate.state" /etc/logrotate.d/ferroban >"$work/logrotate.out" 2>&1 ||
		fail "logrotate with /etc/logrotate.d/ferroban:\n$(cat "$work/logrotate.out")"
	[[ -s /var/log/ferroban.log.1 ]] || fail "logrotate did not rotate /var/log/ferroban.log"
	grep -q 'flush performed on /var/log/ferroban.log' /var/log/ferroban.log ||
		fail "after logrotate the daemon does not write to the new /var/log/ferroban.log"
	ok "logrotate rotates /var/log/ferroban.log and postrotate makes the daemon reopen it"
else
	echo "test-deb.sh: SKIPPED: logrotate run (logrotate not installed)"
fi

"${exec_reload[@]}" >"$work/reload.out" 2>&1 || fail "ExecReload:\n$(cat "$work/reload.out")"
client ping >/dev/null || fail "no answer after ExecReload"
ok "ExecReload (${exec_reload[*]})"
stop_unit shipped

# --- fail2ban's names: opt-in switch, postinst trigger, prerm
sw=/usr/share/ferroban/enable-fail2ban-names
"$sw" >/dev/null || fail "enable-fail2ban-names"
[[ "$(command -v fail2ban-client)" == /usr/local/bin/fail2ban-client ]] ||
	fail "fail2ban-client is not on PATH after the switch"
fail2ban-regex --help >/dev/null 2>&1 || fail "fail2ban-regex --help through the link"
cp /usr/bin/true /usr/bin/fail2ban-client # the fail2ban package arrives
sh "$ctrl/postinst" triggered "/usr/bin/fail2ban-client" 2>"$work/trigger.err" ||
	fail "postinst triggered:\n$(cat "$work/trigger.err")"
[[ ! -e /usr/local/bin/fail2ban-client && ! -e /usr/local/bin/fail2ban-regex ]] ||
	fail "postinst triggered left the links: $(ls -l /usr/local/bin)"
grep -q 'removed' "$work/trigger.err" || fail "postinst triggered did not say what it removed"
rm /usr/bin/fail2ban-client
"$sw" >/dev/null
[[ -L /usr/local/bin/fail2ban-server ]] || fail "the switch did not create the links again"
sh "$ctrl/prerm" remove || fail "prerm remove"
for n in fail2ban-server fail2ban-client fail2ban-regex; do
	[[ ! -e "/usr/local/bin/$n" && ! -L "/usr/local/bin/$n" ]] || fail "prerm remove left /usr/local/bin/$n"
done
ok "name switch on PATH; postinst trigger and prerm remove the links"

# --- the guide's configuration in /etc/fail2ban, on a machine with nginx, sshd, ufw logs
if [[ "$guide_jails" == skip ]]; then
	echo "test-deb.sh: SKIPPED: the guide's configuration (FERROBAN_GUIDE_DIR is not set)"
	exit 0
fi
mkdir -p /etc/fail2ban/jail.d /var/log/nginx /var/log/fastapi
cp "$guide/jail.local" /etc/fail2ban/
cp "$guide"/jail.d/* /etc/fail2ban/jail.d/
touch /var/log/nginx/access.log /var/log/nginx/error.log /var/log/auth.log /var/log/ufw.log \
	/var/log/fastapi/auth.log
/usr/bin/ferroban server -t >"$work/t-guide.out" 2>&1 ||
	fail "ferroban server -t with the guide's files:\n$(cat "$work/t-guide.out")"
ok "ferroban server -t with the guide's files in /etc/fail2ban"
"$sw" >/dev/null
start_unit guide
list="$(fail2ban-client status 2>&1)" || fail "fail2ban-client status:\n$list"
n="$(sed -n 's/.*Number of jail:[[:space:]]*//p' <<<"$list")"
[[ "$n" == "$guide_jails" ]] ||
	fail "the guide enables $guide_jails jails, fail2ban-client status shows '$n':\n$list\n$(cat "$work/server-guide.out")"
# The guide's loop.
printed=0
for jail in $(fail2ban-client status | grep 'Jail list:' | sed 's/.*://;s/,//g'); do
	out="$(fail2ban-client status "$jail")" || fail "fail2ban-client status $jail"
	grep -q 'Banned IP list:' <<<"$out" || fail "status $jail has no banned list:\n$out"
	printed=$((printed + 1))
done
[[ "$printed" == "$guide_jails" ]] || fail "the guide's loop printed $printed jails of $guide_jails"
ok "guide: all $guide_jails jails up; the guide's status loop prints each banned list"
stop_unit guide
INSIDE

say "installed view: unshare --mount --pid --net --fork"
: >"$work/inside.checks"
unshare --mount --pid --net --fork --mount-proc \
	bash "$work/inside.sh" "$root" "$work" "$ctrl" "$guide" "$guide_jails" ||
	fail "the installed package did not pass (see above)"
checks=$((checks + $(wc -l <"$work/inside.checks")))

say "$checks checks passed"
