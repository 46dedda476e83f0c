# The shell itself: loops, case, functions, arithmetic, here-documents,
# read loops, command substitution, positional parameters, subshells.
exec 2>&1
W=/tmp/rse-shell_misc
rm -rf "$W"; mkdir -p "$W"; cd "$W" || exit 1

i=0; s=0
while [ $i -lt 1000 ]; do i=$((i + 1)); s=$((s + i * i)); done
echo "sum of squares $s"
for w in alpha beta gamma; do
    case $w in
        a*) echo "$w starts with a" ;;
        *m*) echo "$w has an m" ;;
        *) echo "$w other" ;;
    esac
done
fib() { if [ "$1" -lt 2 ]; then echo "$1"; else echo $(( $(fib $(($1 - 1))) + $(fib $(($1 - 2))) )); fi; }
echo "fib 12 = $(fib 12)"
cat <<END > here.txt
first line
value of 6*7 = $((6 * 7))
END
cat here.txt
cat <<'END'
literal $HOME and $(not run)
END
n=0
while read -r a b; do n=$((n + a)); echo "read: $b"; done <<END
1 one
2 two
3 three
END
echo "n = $n"
set -- x y z
echo "$# args: $*"
shift
echo "after shift: $1 $2"
v=outer
( v=inner; echo "in subshell: $v" )
echo "after subshell: $v"
x=$(printf '%s' abc | tr a-c A-C); echo "$x"
echo "${#x} ${x%C} ${x#A} ${undefined:-default}"
printf '%5s|%-5s|%05d|%x\n' ab cd 42 255
echo $((17 / 5)) $((17 % 5)) $((1 << 10)) $((-7 / 2)) $((0x1f))
str="a b  c"; set -- $str; echo "$#"
v=a:b:c; IFS=:; set -- $v; echo "$2"; unset IFS
for f in 3 1 2; do echo "$f"; done | sort -r | tr '\n' ' '; echo
echo "$(echo "$(echo nested)")"
eval 'echo eval works'
seq 1 5 | while read -r k; do printf '%s;' "$k"; done; echo
type cd | head -n 1

cd /; rm -rf "$W"
