# Small things Linux does that busybox shows: a signal death without a
# core prints no "(core dumped)"; a script without `#!` runs (busybox sh
# re-executes itself through /proc/self/exe); a `#!` script's process is
# named after the script; ~root expands from /etc/passwd.
exec 2>&1
W=/tmp/rse-linux_compat
rm -rf "$W"; mkdir -p "$W"; cd "$W" || exit 1

ulimit -c 0
sh -c 'kill -SEGV $$'; echo "kill -SEGV: $?"
sh -c 'kill -ABRT $$'; echo "kill -ABRT: $?"
printf 'echo no shebang: $1\n' > noshebang
chmod +x noshebang
./noshebang arg
printf '#!/bin/sh\nread c < /proc/$$/comm; echo "comm: $c"\n' > script-comm
chmod +x script-comm
./script-comm
echo "home of root: ~root"
echo ~root

cd /; rm -rf "$W"
