# ferry's remote shell: one per host, fed requests on stdin, answering on
# stdout/stderr with end markers. Started as `/bin/sh -c SCRIPT ferry MARKER [MARK]`;
# its ready line is `MARKERready`, then ` refused` when the file MARK exists (the
# agent's start command names the mark a host that cannot run it gets: see
# src/transport/agent.rs).
# Request:  R ID NLINES STDINLEN TIMEOUT BECOME [DEST]  then NLINES lines of
#           script, then STDINLEN bytes of stdin (written to DEST when given,
#           e.g. a file put's temp file, and read by the script otherwise).
#           I ID NLINES 0 0 0  then NLINES lines of script: ferry's own
#           scripts (stat, read, create), run in this shell without a fork;
#           they end with `return`, never `exit`, read no stdin, restore
#           the umask they change and name their variables _f_*.
#           K  then one line: the become password (kept in memory only).
#           Q  quit.
#           X PATH  exec the agent at PATH in place of this shell (it says
#           its own ready line; see src/transport/agent.rs).
# Reply:    the script's stdout then "MARKER<ID> RC TIMEDOUT\n" on stdout,
#           the script's stderr then "MARKER<ID>\n" on stderr.
# Scripts without a timeout run in a subshell (a fork, no exec); the
# helper's own variables are prefixed _f_ and the password is cleared there.
# The temp directory (askpass, stdin, timeout mark) is made on first need.
_f_M=$1
_f_note=
if [ -n "${2-}" ] && [ -e "$2" ]; then _f_note=' refused'; fi
set --
_f_d=
_f_um=$(umask)
_f_tmp() {
  [ -n "$_f_d" ] && return 0
  _f_d=$(mktemp -d "${TMPDIR:-/tmp}/ferry.XXXXXXXX") || exit 97
  printf '#!/bin/sh\nprintf "%%s\\n" "$FERRY_BECOME_PW"\n' > "$_f_d/askpass" && chmod 700 "$_f_d/askpass" || exit 97
}
_f_own() { eval "$_f_s"; }
trap '[ -z "$_f_d" ] || rm -rf "$_f_d"' EXIT
trap 'exit 1' HUP TERM
_f_pw=
printf '%sready%s\n' "$_f_M" "$_f_note"
while read -r _f_op _f_id _f_n _f_len _f_to _f_b _f_dest; do
  case $_f_op in
  R|I)
    _f_s=
    _f_i=0
    while [ "$_f_i" -lt "$_f_n" ]; do
      IFS= read -r _f_l || exit 0
      _f_s="$_f_s$_f_l
"
      _f_i=$((_f_i + 1))
    done
    if [ "$_f_op" = I ]; then
      _f_own < /dev/null
      printf '%s%s %s 0\n' "$_f_M" "$_f_id" "$?"
      printf '%s%s\n' "$_f_M" "$_f_id" >&2
      continue
    fi
    if [ "$_f_len" -gt 0 ] || [ "$_f_to" -gt 0 ] || [ "$_f_b" = 1 ]; then _f_tmp; fi
    _f_in=/dev/null
    if [ -n "$_f_dest" ]; then
      # The script checks that DEST exists; stdin is consumed either way.
      # DEST is made owner-only (the script then sets the final mode), so the
      # content is never readable wider than asked, even for a moment. A
      # write that fails (disk full) removes DEST and reads the rest of the
      # content, so the stream stays framed and the script sees no file.
      { umask 077; true > "$_f_dest"; } 2> /dev/null
      _f_ok=$?
      umask "$_f_um"
      [ "$_f_ok" = 0 ] || _f_dest=$_f_d/in
      head -c "$_f_len" | { cat > "$_f_dest" || { rm -f "$_f_dest"; cat > /dev/null; }; } 2> /dev/null
    elif [ "$_f_len" -gt 0 ]; then
      head -c "$_f_len" > "$_f_d/in"
      _f_in=$_f_d/in
    fi
    if [ "$_f_b" = 1 ]; then
      export FERRY_BECOME_PW="$_f_pw" SUDO_ASKPASS="$_f_d/askpass"
    fi
    if [ "$_f_to" -gt 0 ]; then
      setsid /bin/sh -c "$_f_s" < "$_f_in" &
      _f_p=$!
      setsid /bin/sh -c 'sleep "$1"; : > "$2"; kill -TERM "-$3" || kill -TERM "$3"; sleep 2; kill -KILL "-$3"' w "$_f_to" "$_f_d/to" "$_f_p" < /dev/null > /dev/null 2>&1 &
      _f_w=$!
      wait "$_f_p" 2> /dev/null
      _f_rc=$?
      # The watchdog may not have made its own group yet: then kill it by pid.
      # KILL, not TERM: a TERM landing between the fork and the exec of
      # `setsid` meets this shell's inherited TERM trap and is lost, and the
      # wait below then lasted the whole timeout (seen 14 times in 400).
      kill -KILL "-$_f_w" 2> /dev/null || kill -KILL "$_f_w" 2> /dev/null
      wait "$_f_w" 2> /dev/null
    else
      (_f_pw= ; trap - EXIT HUP TERM; eval "$_f_s") < "$_f_in"
      _f_rc=$?
    fi
    unset FERRY_BECOME_PW SUDO_ASKPASS
    _f_t=0
    # The watchdog is gone here: its mark is checked and removed (no fork
    # unless a command timed out).
    if [ "$_f_to" -gt 0 ] && [ -e "$_f_d/to" ]; then
      _f_t=1
      kill -KILL "-$_f_p" 2> /dev/null
      rm -f "$_f_d/to"
    fi
    [ "$_f_len" -gt 0 ] && [ -z "$_f_dest" ] && : > "$_f_d/in"
    printf '%s%s %s %s\n' "$_f_M" "$_f_id" "$_f_rc" "$_f_t"
    printf '%s%s\n' "$_f_M" "$_f_id" >&2
    ;;
  K) IFS= read -r _f_pw || exit 0 ;;
  Q) exit 0 ;;
  X) trap - EXIT HUP TERM; [ -z "$_f_d" ] || rm -rf "$_f_d"; exec "$_f_id" "$_f_M" ;;
  *) printf '%sbad request: %s\n' "$_f_M" "$_f_op" >&2; exit 98 ;;
  esac
done
