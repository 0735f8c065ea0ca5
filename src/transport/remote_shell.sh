# ferry's remote shell: one per host, fed requests on stdin, answering on
# stdout/stderr with end markers. Started as `/bin/sh -c SCRIPT ferry MARKER`.
# Request:  R ID NLINES STDINLEN TIMEOUT BECOME  then NLINES lines of script,
#           then STDINLEN bytes of stdin.
#           K  then one line: the become password (kept in memory only).
#           Q  quit.
# Reply:    the script's stdout then "MARKER<ID> RC TIMEDOUT\n" on stdout,
#           the script's stderr then "MARKER<ID>\n" on stderr.
M=$1
d=$(mktemp -d "${TMPDIR:-/tmp}/ferry.XXXXXXXX") || exit 97
trap 'rm -rf "$d"' EXIT
trap 'exit 1' HUP TERM
printf '#!/bin/sh\nprintf "%%s\\n" "$FERRY_BECOME_PW"\n' > "$d/askpass" && chmod 700 "$d/askpass" || exit 97
pw=
printf '%sready\n' "$M"
while read -r op id n len to b; do
  case $op in
  R)
    s=
    i=0
    while [ "$i" -lt "$n" ]; do
      IFS= read -r l || exit 0
      s="$s$l
"
      i=$((i + 1))
    done
    if [ "$len" -gt 0 ]; then
      head -c "$len" > "$d/in"
      in=$d/in
    else
      in=/dev/null
    fi
    rm -f "$d/to"
    if [ "$b" = 1 ]; then
      export FERRY_BECOME_PW="$pw" SUDO_ASKPASS="$d/askpass"
    fi
    if [ "$to" -gt 0 ]; then
      setsid /bin/sh -c "$s" < "$in" &
      p=$!
      setsid /bin/sh -c 'sleep "$1"; : > "$2"; kill -TERM "-$3"; sleep 2; kill -KILL "-$3"' w "$to" "$d/to" "$p" < /dev/null > /dev/null 2>&1 &
      w=$!
      wait "$p" 2> /dev/null
      rc=$?
      kill -TERM "-$w" 2> /dev/null
      wait "$w" 2> /dev/null
    else
      /bin/sh -c "$s" < "$in"
      rc=$?
    fi
    unset FERRY_BECOME_PW SUDO_ASKPASS
    t=0
    if [ -e "$d/to" ]; then
      t=1
      kill -KILL "-$p" 2> /dev/null
    fi
    [ "$len" -gt 0 ] && : > "$d/in"
    printf '%s%s %s %s\n' "$M" "$id" "$rc" "$t"
    printf '%s%s\n' "$M" "$id" >&2
    ;;
  K) IFS= read -r pw || exit 0 ;;
  Q) exit 0 ;;
  *) printf '%sbad request: %s\n' "$M" "$op" >&2; exit 98 ;;
  esac
done
