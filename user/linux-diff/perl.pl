# perl under differential test: regexes, hashes, sort, sprintf, file I/O.
# Prints nothing that differs between two correct systems.
use strict;
use warnings;

my $dir = "/tmp/perldiff";
system("rm", "-rf", $dir) == 0 or die "rm: $?";
mkdir $dir or die "mkdir: $!";

# A text made up deterministically, written and read back.
my @words = qw(alpha beta gamma delta epsilon zeta eta theta iota kappa);
open(my $out, '>', "$dir/text.txt") or die "open: $!";
for my $i (1 .. 3000) {
    my $w = $words[($i * 7) % @words];
    my $v = $words[($i * 3) % @words];
    printf $out "%05d %s-%s value=%d ratio=%.3f\n", $i, $w, $v, $i * 13 % 101, $i / 7;
}
close $out or die "close: $!";
printf "size %d lines %d\n", -s "$dir/text.txt", do { open my $f, '<', "$dir/text.txt"; my @l = <$f>; scalar @l };

# Regexes: captures, named captures, global match, substitution with /e.
my (%count, %sum, $lines);
open(my $in, '<', "$dir/text.txt") or die "open: $!";
while (my $line = <$in>) {
    chomp $line;
    $lines++;
    next unless $line =~ /^(\d+) (?<w>[a-z]+)-(?<v>[a-z]+) value=(\d+)/;
    $count{$+{w}}++;
    $sum{"$+{w}/$+{v}"} += $4;
}
close $in;
print "lines $lines\n";
for my $w (sort { $count{$b} <=> $count{$a} || $a cmp $b } keys %count) {
    printf "%-8s %4d\n", $w, $count{$w};
}
my @top = (sort { $sum{$b} <=> $sum{$a} || $a cmp $b } keys %sum)[0 .. 4];
print "top ", join(", ", map { "$_=$sum{$_}" } @top), "\n";

my $s = "The quick brown fox jumps over the lazy dog 42 times in 2023";
my @nums = $s =~ /(\d+)/g;
(my $t = $s) =~ s/(\d+)/$1 * 2/ge;
(my $u = $s) =~ tr/a-z/A-Z/;
my $vowels = ($s =~ tr/aeiou//);
print "nums @nums\n$t\n$u\nvowels $vowels\n";
print "split ", join("|", split /\s+/, "  a b   c d "), "\n";
print "case ", ($s =~ /QUICK/i ? "yes" : "no"), " ", ($s =~ /^the/ ? "yes" : "no"), "\n";
my $csv = 'a,"b,c",d,"e ""q"""';
my @f;
push @f, defined $1 ? $1 =~ s/""/"/gr : $2 while $csv =~ /\G(?:"((?:[^"]|"")*)"|([^,]*))(?:,|$)/g and pos($csv) <= length $csv and @f < 4;
print "csv ", join(" | ", @f), "\n";

# sprintf formats.
printf "%5s|%-5s|%05d|%+d|%x|%X|%o|%e|%.2f|%g|%g|%%|%c|%3\$s\n", "ab", "cd", 42, 7, 255, 255, 8, 12345.678, 3.14159, 0.0001, 1e20, 65;
print sprintf("%s", 1 / 3), " ", 2**53 + 1, " ", 10 / 4, " ", int(-7 / 2), " ", -7 % 3, "\n";

# Hashes of arrays, nested data, sort numerically and by several keys.
my %hoa;
push @{ $hoa{ $_ % 5 } }, $_ for 1 .. 40;
print "hoa $_: @{ $hoa{$_} }[0..2] sum=", eval { my $t = 0; $t += $_ for @{ $hoa{$_} }; $t }, "\n" for sort keys %hoa;
my @recs = map { { name => $words[$_ % 10], n => ($_ * 37) % 11 } } 0 .. 19;
print "sorted ", join(" ", map { "$_->{name}:$_->{n}" } sort { $a->{n} <=> $b->{n} or $b->{name} cmp $a->{name} } @recs), "\n";
print "reverse ", join(",", reverse sort { $a <=> $b } (10, 9, 100, 1, 55)), "\n";
my %inv = reverse %count;
print "exists ", (exists $count{alpha} ? 1 : 0), (exists $count{omega} ? 1 : 0), " keys ", scalar(keys %inv), "\n";

# More file I/O: append, seek, read, binary, directories, rename, unlink.
open(my $a, '>>', "$dir/text.txt") or die;
print $a "tail line\n";
close $a;
open(my $r, '<', "$dir/text.txt") or die;
seek($r, -10, 2);
read($r, my $buf, 10);
print "tail ", $buf;
seek($r, 6, 0);
print "at6 ", scalar(<$r>);
close $r;
open(my $b, '>:raw', "$dir/bin") or die;
print $b pack("NnCa3", 0xdeadbeef, 513, 7, "xyz");
close $b;
open($b, '<:raw', "$dir/bin") or die;
local $/;
my $bin = <$b>;
close $b;
printf "pack %d %s %s\n", length $bin, unpack("H*", $bin), join(",", unpack("NnCa3", $bin));
mkdir "$dir/sub$_" for 1 .. 3;
rename "$dir/bin", "$dir/sub2/bin" or die "rename: $!";
opendir(my $dh, $dir) or die;
print "dir ", join(" ", sort grep { !/^\./ } readdir $dh), "\n";
closedir $dh;
print "tests ", join("", map { $_ ? 1 : 0 } -d "$dir/sub1", -f "$dir/sub2/bin", -e "$dir/bin", -r "$dir/text.txt"), "\n";
print "unlink ", unlink("$dir/sub2/bin", "$dir/nothing"), "\n";
open(my $p, '-|', 'seq 3 | sort -r') or die;
my @p = <$p>;
close $p;
print "pipe from ", join("", @p) =~ tr/\n/ /r, "status $?\n";
my $st = system("sh", "-c", "exit 3");
print "system ", $st >> 8, "\n";
print "backticks ", `echo hi there`;
system("rm", "-rf", $dir);
print "gone ", (-e $dir ? 1 : 0), "\n";
