# bash under differential test: process substitution, coprocesses,
# arrays, command substitution, traps, job control-free background jobs.
# Prints no pids ($$, $!, $BASHPID stay inside comparisons).
d=/tmp/bashdiff
rm -rf $d && mkdir -p $d && cd $d || exit 1
echo "bash ${BASH_VERSINFO[0]}.${BASH_VERSINFO[1]}"

# arrays and associative arrays
arr=(one two "three four" five)
echo "${#arr[@]} ${arr[2]} ${arr[@]:1:2} ${!arr[*]}"
arr+=(six); unset 'arr[0]'; echo "${#arr[@]} ${arr[*]}"
declare -A h=([apple]=3 [pear]=5 [fig]=7)
h[kiwi]=11
for k in $(printf '%s\n' "${!h[@]}" | sort); do printf '%s=%s ' "$k" "${h[$k]}"; done; echo
sum=0; for v in "${h[@]}"; do ((sum += v)); done; echo "sum $sum"
mapfile -t lines < <(seq 3 7); echo "mapfile ${#lines[@]} ${lines[-1]}"
read -r -a parts <<< "a b  c"; echo "read-a ${#parts[@]} ${parts[2]}"
IFS=: read -r u x rest <<< "root:x:0:0"; echo "ifs $u $rest"

# command substitution, arithmetic, parameter expansion
x=$(echo outer $(echo inner $(echo deepest)))
echo "$x"
n=$(( (7 ** 3) % 10 + 16#ff + 2#101 )); echo "arith $n $((n > 260 ? 1 : 0))"
s="Hello Wide World"
echo "${s,,} ${s^^} ${s//o/0} ${s#* } ${s%% *} ${#s} ${s:6:4}"
unset nope; echo "${nope:-default} ${nope:+alt}x"
printf -v pv '%05.1f' 3.14159; echo "printf-v $pv"
[[ "abc123def" =~ ([a-z]+)([0-9]+) ]] && echo "regex ${BASH_REMATCH[1]} ${BASH_REMATCH[2]}"
shopt -s extglob; f="file.tar.gz"; echo "extglob ${f%%.@(tar|gz)*}"
echo {1..5} {a..e..2} x{A,B}y
fib() { local n=$1; ((n < 2)) && { echo $n; return; }; echo $(( $(fib $((n - 1))) + $(fib $((n - 2))) )); }
echo "fib $(fib 12)"

# process substitution: input and output
paste <(seq 3) <(seq 4 6) <(printf 'a\nb\nc\n')
comm -3 <(printf 'a\nb\nc\n') <(printf 'b\nc\nd\n')
while read -r a b; do echo "pair $a $b"; done < <(printf '1 x\n2 y\n')
seq 1 100 | tee >(wc -l > count.txt) >(md5sum > sum.txt) > /dev/null
# The two readers run asynchronously: wait (bounded) for their output.
for i in $(seq 100); do [[ -s count.txt && -s sum.txt ]] && break; sleep 0.1; done
echo "tee $(cat count.txt) $(cat sum.txt)"
cat <(cat <(echo nested procsub))
ls -l /dev/fd/ > /dev/null && echo "devfd ok"
diff_out=$(cmp <(seq 10) <(seq 10) && echo same); echo "cmp $diff_out"

# coprocesses
coproc DOUBLER { while read -r v; do echo $((v * 2)); done; }
for v in 1 21 50; do echo $v >&"${DOUBLER[1]}"; read -r r <&"${DOUBLER[0]}"; echo "coproc $v -> $r"; done
exec {DOUBLER[1]}>&-
wait $DOUBLER_PID; echo "coproc status $?"
coproc { sort -r; }
printf 'b\nc\na\n' >&"${COPROC[1]}"
exec {COPROC[1]}>&-
while read -r l; do echo "sorted $l"; done <&"${COPROC[0]}"
wait

# traps
(trap 'echo "exit trap"' EXIT; echo "in subshell")
(trap 'echo "got USR1"' USR1; kill -USR1 $BASHPID; echo "after USR1")
(trap 'echo "got TERM"; exit 7' TERM; kill -TERM $BASHPID; echo "not reached"); echo "term status $?"
(set -e; trap 'echo "err trap at $LINENO"' ERR; false; echo "not reached"); echo "errexit $?"
f() { trap 'echo "return trap"' RETURN; echo "in f"; }; f; trap - RETURN
trap 'echo "int ignored"' INT; kill -INT $$; trap - INT
trap '' HUP; (kill -HUP $BASHPID; echo "hup ignored in child")
trap - HUP

# background jobs, wait, statuses, pipes
sleep 0.1 & p1=$!
(exit 5) & p2=$!
wait $p1; echo "wait sleep $?"
wait $p2; echo "wait exit $?"
# (bash reports the killed job with its pid on stderr: keep that out)
(sleep 30 & p3=$!; kill -KILL $p3; wait $p3; echo "killed $?") 2>/dev/null
[[ $p1 != $$ ]] && echo "pids differ"
set -o pipefail; false | true; echo "pipefail $?"; set +o pipefail
true | false | true; echo "pipestatus ${PIPESTATUS[*]}"
exec {fd}> fdfile; echo "via fd" >&$fd; exec {fd}>&-; cat fdfile
{ echo grouped; echo stderr >&2; } 2>&1 | sort
cat <<EOT
heredoc $((1 + 2)) $(echo sub)
EOT
cat <<'EOT'
literal $HOME $(nothing)
EOT
type -t cd fib ls; command -v sort
getopts_test() { local OPTIND o; while getopts "ab:" o; do echo "opt $o ${OPTARG:-}"; done; }
getopts_test -a -b val
ulimit -n 256; echo "ulimit $(ulimit -n)"
umask 027; touch newf; stat -c %a newf
cd / && rm -rf $d
echo done
