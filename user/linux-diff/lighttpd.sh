# lighttpd's configuration check (`-tt`: parse, then load and initialise
# the modules) and its parsed-configuration dump (`-p`), for a good
# configuration and broken ones.
# Normalised: lighttpd starts each error-log line with the local time
# ("2024-05-01 12:00:00: "); that prefix is replaced by "TIME: ". `-p`
# shows lighttpd's own pid as `var.PID = N`: N is replaced by "PID".
conf=/etc/rse/diff/lighttpd.conf
run() {
    "$@" > /tmp/lighttpd.out 2>&1
    st=$?
    sed -E -e 's/^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}: /TIME: /' \
        -e 's/^( *var\.PID *= )[0-9]+$/\1PID/' /tmp/lighttpd.out
    echo "status $st"
}
mkdir -p /tmp/www/static /tmp/www/example
lighttpd -v | sed -n 1p | cut -d' ' -f1
run lighttpd -tt -f $conf
run lighttpd -t -f $conf
run lighttpd -p -f $conf
printf 'server.document-root = "/tmp/www"\nserver.port = \n' > /tmp/bad.conf
run lighttpd -tt -f /tmp/bad.conf
printf 'server.document-root = "/tmp/www"\nserver.modules = ("mod_nosuch")\n' > /tmp/nomod.conf
run lighttpd -tt -f /tmp/nomod.conf
run lighttpd -tt -f /tmp/missing.conf
rm -rf /tmp/www /tmp/bad.conf /tmp/nomod.conf /tmp/lighttpd.out
