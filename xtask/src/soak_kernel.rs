//! `cargo xtask soak kernel [--minutes M] [--smp N]`: the whole kernel
//! under torus failures. One boot runs, in a loop until the time is up,
//! every busybox script of user/scripts (output and status compared with
//! what the host's busybox gives, computed here beforehand), a set of
//! rsetest programs, and a short fuzz run with a new seed each round;
//! meanwhile a background loop fails a random torus (B or C: torus A
//! refuses) through /proc/braid every 5 s and revives the one failed
//! before. A process lost by a failure hangs its round (the boot times
//! out); one run twice prints its result twice; a wrong result is
//! reported. The soak passes when every round's every check printed
//! `ok` exactly once, torus failures happened, and the shell is alive.

use std::collections::HashMap;
use std::time::Duration;

use crate::artifacts::Addition;
use crate::userland::GUEST_BIN_DIR;

/// rsetest programs that do not depend on where they are scheduled (the
/// sched_* checks measure placement, which failures change on purpose).
const PROGRAMS: &[&str] = &[
    "fork_cow",
    "children",
    "signals",
    "threads",
    "futex_ops",
    "epoll",
    "unix_stream",
    "shared_file",
    "pipe_100m",
];
/// Fuzzed calls per round.
const FUZZ_CALLS: u32 = 20_000;
/// Seconds between two torus failures.
const FAIL_EVERY: u32 = 5;
/// Where the expected outputs go in the guest.
const EXPECTED_DIR: &str = "/etc/rse/soak";

/// `--minutes M` (default 10) and `--smp N` (default 3).
pub fn main(args: &[String]) -> Result<i32, String> {
    let mut minutes = 10.0f64;
    let mut smp = 3;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().cloned().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--minutes" => minutes = val()?.parse().map_err(|_| "--minutes needs a number")?,
            "--smp" => smp = val()?.parse().map_err(|_| "--smp needs a number")?,
            _ => return Err(format!("unknown option {a}\n{}", crate::USAGE)),
        }
    }
    if !(minutes > 0.0 && minutes <= 24.0 * 60.0) || smp < 2 {
        return Err(
            "--minutes must be in (0, 1440] and --smp at least 2 (torus A is never failed)".into(),
        );
    }
    let report = run((minutes * 60.0) as u32, smp)?;
    eprintln!("xtask soak kernel: passed: {report}");
    Ok(0)
}

/// Scenario: the soak for one minute (`cargo xtask test`).
pub fn short_scenario() -> Result<(), String> {
    let report = run(60, 3)?;
    eprintln!("  {report}");
    Ok(())
}

/// Runs the soak for `secs` on `smp` CPUs; a summary, or what went wrong.
pub fn run(secs: u32, smp: u32) -> Result<String, String> {
    let scripts = crate::userland_scenarios::script_names();
    let dir = crate::artifacts::out_dir().join(format!("soak-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let result = (|| {
        let mut adds: Vec<Addition> = crate::userland::build_user_programs()?
            .into_iter()
            .map(|(host, guest)| Addition { host, guest })
            .collect();
        for name in &scripts {
            let script = crate::userland::user_dir()
                .join("scripts")
                .join(format!("{name}.sh"));
            let (out, status) = crate::userland_scenarios::run_on_host(&script)?;
            let f = dir.join(format!("{name}.out"));
            std::fs::write(&f, format!("{out}status {status}\n"))
                .map_err(|e| format!("{}: {e}", f.display()))?;
            adds.push(Addition {
                host: f,
                guest: format!("{EXPECTED_DIR}/{name}.out"),
            });
        }
        let script = dir.join("soak.sh");
        std::fs::write(&script, guest_script(secs, &scripts))
            .map_err(|e| format!("{}: {e}", script.display()))?;
        adds.push(Addition {
            host: script,
            guest: format!("{EXPECTED_DIR}/soak.sh"),
        });
        let cmd = format!("sh {EXPECTED_DIR}/soak.sh; st=$?; echo alive; exit $st");
        // Rounds that started before the end finish after it.
        let limit = Duration::from_secs(u64::from(secs) + 600);
        let (console, status) =
            crate::scenarios::exec_in_guest_for(&cmd, &adds, Some(smp), "", limit)?;
        check(&console, status, &scripts, secs)
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// The guest's soak loop (busybox sh).
fn guest_script(secs: u32, scripts: &[&str]) -> String {
    let bin = GUEST_BIN_DIR;
    let scripts = scripts.join(" ");
    let programs = PROGRAMS.join(" ");
    format!(
        r#"up() {{ cut -d. -f1 /proc/uptime; }}
end=$(( $(up) + {secs} ))
(
  prev=
  while [ "$(up)" -lt $end ]; do
    sleep {FAIL_EVERY}
    [ -n "$prev" ] && echo "revive $prev" > /proc/braid
    if [ $((RANDOM % 2)) = 0 ]; then t=B; else t=C; fi
    echo "fail $t" > /proc/braid && echo "soak fail $t"
    prev=$t
  done
  [ -n "$prev" ] && echo "revive $prev" > /proc/braid
) &
failer=$!
n=0
bad=0
while [ "$(up)" -lt $end ]; do
  n=$((n+1))
  for s in {scripts}; do
    {{ sh /etc/rse/scripts/$s.sh; echo $? > /tmp/.soak-st; }} 2>&1 | cat > /tmp/soak.out
    echo "status $(cat /tmp/.soak-st)" >> /tmp/soak.out
    if cmp -s /tmp/soak.out {EXPECTED_DIR}/$s.out; then echo "soak $n script $s ok"
    else echo "soak $n script $s WRONG"; diff {EXPECTED_DIR}/$s.out /tmp/soak.out | head -20; bad=$((bad+1)); fi
  done
  for p in {programs}; do
    {bin}/rsetest $p > /tmp/soak.out 2>&1; st=$?
    if [ $st = 0 ] && grep -q "^PASS $p" /tmp/soak.out && ! grep -q "^FAIL" /tmp/soak.out; then echo "soak $n rsetest $p ok"
    else echo "soak $n rsetest $p WRONG (status $st)"; tail -20 /tmp/soak.out; bad=$((bad+1)); fi
  done
  if {bin}/rsefuzz --calls {FUZZ_CALLS} --seed $n > /tmp/soak.out 2>&1; then echo "soak $n rsefuzz ok"
  else echo "soak $n rsefuzz WRONG (seed $n)"; tail -20 /tmp/soak.out; bad=$((bad+1)); fi
done
wait $failer
echo "soak rounds $n wrong $bad"
[ $bad = 0 ]
"#
    )
}

/// Checks the console of a soak: every round complete, each check `ok`
/// exactly once (a duplicated process would print twice), torus failures
/// happened, nothing wrong, the shell alive.
fn check(console: &str, status: i32, scripts: &[&str], secs: u32) -> Result<String, String> {
    let show = |why: &str| {
        let tail: Vec<&str> = console.lines().rev().take(60).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        format!(
            "{why} (status {status})\n--- console (last lines) ---\n{}",
            tail.join("\n")
        )
    };
    let wrong: Vec<&str> = console.lines().filter(|l| l.contains(" WRONG")).collect();
    if !wrong.is_empty() {
        return Err(show(&format!(
            "{} wrong results, first: {}",
            wrong.len(),
            wrong[0]
        )));
    }
    let Some(rounds) = console
        .lines()
        .find_map(|l| l.trim_end().strip_prefix("soak rounds "))
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse::<u32>().ok())
    else {
        return Err(show("the soak did not finish"));
    };
    if status != 0 || !console.lines().any(|l| l.trim_end() == "alive") {
        return Err(show("the soak's shell did not end well"));
    }
    let mut seen: HashMap<String, u32> = HashMap::new();
    for l in console.lines().map(str::trim_end) {
        if l.starts_with("soak ") && l.ends_with(" ok") {
            *seen.entry(l.to_string()).or_default() += 1;
        }
    }
    let mut want = Vec::new();
    for n in 1..=rounds {
        want.extend(scripts.iter().map(|s| format!("soak {n} script {s} ok")));
        want.extend(PROGRAMS.iter().map(|p| format!("soak {n} rsetest {p} ok")));
        want.push(format!("soak {n} rsefuzz ok"));
    }
    for w in &want {
        match seen.get(w).copied().unwrap_or(0) {
            1 => {}
            0 => return Err(show(&format!("missing: {w}"))),
            k => {
                return Err(show(&format!(
                    "printed {k} times (a process ran twice?): {w}"
                )))
            }
        }
    }
    if seen.len() != want.len() {
        return Err(show("results of rounds that were not counted"));
    }
    let fails = console
        .lines()
        .filter(|l| l.starts_with("soak fail "))
        .count();
    // Every 5 s of guest time plus the failer's own forks, which a busy
    // guest delays (10 minutes gave 98, not 120): at least half of that.
    let expected = (secs / (2 * FAIL_EVERY)) as usize;
    if fails == 0 || fails < expected {
        return Err(show(&format!(
            "only {fails} torus failures (want at least {expected}, and one)"
        )));
    }
    Ok(format!(
        "{rounds} rounds of {} checks, {fails} torus failures, 0 wrong, 0 lost, 0 duplicated",
        want.len() / rounds.max(1) as usize
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn console(rounds: u32, fails: usize) -> String {
        let mut c = String::new();
        for _ in 0..fails {
            c += "soak fail B\n";
        }
        for n in 1..=rounds {
            c += &format!("soak {n} script a ok\n");
            for p in PROGRAMS {
                c += &format!("soak {n} rsetest {p} ok\n");
            }
            c += &format!("soak {n} rsefuzz ok\n");
        }
        c += &format!("soak rounds {rounds} wrong 0\nalive\n");
        c
    }

    #[test]
    fn a_complete_soak_passes() {
        assert!(check(&console(2, 12), 0, &["a"], 60).is_ok());
    }

    #[test]
    fn lost_duplicated_wrong_or_unfailed_is_caught() {
        let c = console(2, 12);
        let lost = c.replace("soak 2 rsetest threads ok\n", "");
        assert!(check(&lost, 0, &["a"], 60).unwrap_err().contains("missing"));
        let twice = c.replace(
            "soak 1 rsefuzz ok\n",
            "soak 1 rsefuzz ok\nsoak 1 rsefuzz ok\n",
        );
        assert!(check(&twice, 0, &["a"], 60)
            .unwrap_err()
            .contains("2 times"));
        let wrong = c.replace("soak 1 script a ok", "soak 1 script a WRONG");
        assert!(check(&wrong, 1, &["a"], 60).is_err());
        assert!(check(&console(2, 3), 0, &["a"], 60)
            .unwrap_err()
            .contains("torus failures"));
        assert!(check(&c.replace("alive\n", ""), 0, &["a"], 60).is_err());
    }
}
