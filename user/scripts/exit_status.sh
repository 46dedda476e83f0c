# Exit statuses: plain codes, truncation to 8 bits, !, &&, ||, and
# 128 + signal for processes killed by a signal; the script's own status.
exec 2>&1

true; echo "true $?"
false; echo "false $?"
! true; echo "! true $?"
sh -c 'exit 7'; echo "exit 7: $?"
sh -c 'exit 255'; echo "exit 255: $?"
sh -c 'exit 256'; echo "exit 256: $?"
sh -c 'exit 300'; echo "exit 300: $?"
(exit 42); echo "subshell 42: $?"
sh -c 'kill -9 $$'; echo "kill -9: $?"
sh -c 'kill -TERM $$'; echo "kill -TERM: $?"
sh -c 'kill -INT $$'; echo "kill -INT: $?"
sh -c 'kill -HUP $$'; echo "kill -HUP: $?"
sh -c 'kill -USR1 $$'; echo "kill -USR1: $?"
sh -c 'kill -ALRM $$'; echo "kill -ALRM: $?"
sh -c 'sh -c "kill -9 \$\$"; echo "nested: $?"; exit 3'; echo "outer: $?"
nonexistent_command_rse 2>/dev/null; echo "not found: $?"
true && echo "and-list ran"
false || echo "or-list ran"
false && echo "not printed"; echo "after failed and-list: $?"
if sh -c 'exit 1'; then echo yes; else echo "if else: $?"; fi
f() { return 12; }
f; echo "function return: $?"
echo | false; echo "pipeline last false: $?"
false | true; echo "pipeline last true: $?"
sh -c 'exit 3' | sh -c 'exit 4'; echo "pipeline 3|4: $?"
r=$(sh -c 'echo out; exit 6'); echo "command substitution: $? $r"
exit 3
