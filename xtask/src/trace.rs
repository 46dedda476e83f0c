//! `cargo xtask trace`: where the instructions of one kernel path go.
//!
//! Boots RSE OS as `cargo xtask run --exec` does, with QEMU waiting for
//! gdb; gdb stops at the syscall entry once the chosen syscall has been
//! entered `--skip` times (warm caches, steady state), then single-steps
//! every instruction until the task is back in user mode, or, with
//! `--rounds R`, until that syscall is entered R more times (a pipe round
//! trip between two processes: both switches and both return paths). The
//! instructions are counted per function in the order they ran.
//! Single-stepping costs ~5 ms of host time per instruction: keep the
//! path short (a few thousand instructions).
//!
//! ```text
//! cargo xtask trace --syscall 110 --skip 1000 --add user/.../rsebench:/bin/rsebench \
//!     --exec 'rsebench null_syscall'
//! ```

use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

use crate::{artifacts, deps, qemu, RunOpts};

/// The debugger that steps the guest.
const GDB: deps::Package = deps::Package {
    name: "gdb",
    file: "/usr/bin/gdb",
};

/// gdb's side: stop at the entry, step, write "ADDRESS SYMBOL" per
/// instruction ("USER" for user mode) to OUT.
const SCRIPT: &str = r#"
import gdb
gdb.execute("set pagination off")
gdb.execute("set confirm off")
gdb.execute("target remote 127.0.0.1:%d" % PORT)
gdb.execute("break syscall_entry if $rax == %d" % NR)
for _ in range(SKIP + 1):
    gdb.execute("continue")
gdb.execute("delete")
entry = int(gdb.parse_and_eval("(long)&syscall_entry")) & 0xffffffffffffffff
out = open(OUT, "w")
n = 0
seen = 0
while n < LIMIT:
    pc = int(gdb.parse_and_eval("$pc")) & 0xffffffffffffffff
    if pc == entry and n > 0 and int(gdb.parse_and_eval("$rax")) == NR:
        seen += 1
        if seen > ROUNDS:
            break
    if pc < 0x800000000000:
        if ROUNDS == 0:
            break
        sym = "USER"
    else:
        try:
            sym = gdb.execute("info symbol 0x%x" % pc, to_string=True).strip()
        except gdb.error:
            sym = "?"
    out.write("%x %s\n" % (pc, sym))
    n += 1
    gdb.execute("stepi", to_string=True)
out.close()
gdb.execute("kill")
"#;

struct TraceOpts {
    nr: u32,
    skip: u32,
    rounds: u32,
    limit: u32,
    rest: Vec<String>,
}

fn parse(args: &[String]) -> Result<TraceOpts, String> {
    let mut o = TraceOpts {
        nr: u32::MAX,
        skip: 1000,
        rounds: 0,
        limit: 50_000,
        rest: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut num = |name: &str| -> Result<u32, String> {
            it.next()
                .and_then(|v| v.parse().ok())
                .ok_or(format!("{name} needs a number"))
        };
        match a.as_str() {
            "--syscall" => o.nr = num("--syscall")?,
            "--skip" => o.skip = num("--skip")?,
            "--rounds" => o.rounds = num("--rounds")?,
            "--limit" => o.limit = num("--limit")?,
            _ => o.rest.push(a.clone()),
        }
    }
    if o.nr == u32::MAX {
        return Err("trace: --syscall NR is required (and --exec CMD)".into());
    }
    Ok(o)
}

/// A function's name without the hash rustc appends (`::h0123...`).
fn function(line: &str) -> String {
    let sym = line.split_once(' ').map_or("", |(_, s)| s);
    let name = sym.split(" + ").next().unwrap_or(sym);
    let name = name.split(" in section").next().unwrap_or(name).trim();
    match name.rsplit_once("::h") {
        Some((base, h)) if h.len() == 16 && h.chars().all(|c| c.is_ascii_hexdigit()) => {
            base.to_string()
        }
        _ => name.to_string(),
    }
}

/// Instructions per function, in the order each first ran.
fn summarize(trace: &str) -> (Vec<(String, u64)>, u64) {
    let mut order: Vec<(String, u64)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut total = 0;
    for line in trace.lines() {
        let f = function(line);
        let i = *index.entry(f.clone()).or_insert_with(|| {
            order.push((f, 0));
            order.len() - 1
        });
        order[i].1 += 1;
        total += 1;
    }
    (order, total)
}

pub fn trace(args: &[String]) -> Result<i32, String> {
    let o = parse(args)?;
    deps::ensure(&[&GDB])?;
    let opts = RunOpts::parse(&o.rest)?;
    if opts.exec.is_none() {
        return Err("trace: --exec CMD is required".into());
    }
    let mut cfg = opts.config("trace")?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("no free port: {e}"))?
        .port();
    cfg.gdb_port = Some(port);
    let kernel = cfg.kernel.clone().ok_or("no kernel")?;
    let vm = std::thread::spawn(move || qemu::run_captured(&cfg, Duration::from_secs(1800), false));
    let dir = artifacts::out_dir();
    let out = dir.join(format!("trace-{}.txt", std::process::id()));
    let script = dir.join(format!("trace-{}.py", std::process::id()));
    std::fs::write(&script, SCRIPT).map_err(|e| format!("{}: {e}", script.display()))?;
    let params = format!(
        "python PORT={port}; NR={}; SKIP={}; ROUNDS={}; LIMIT={}; OUT={:?}",
        o.nr,
        o.skip,
        o.rounds,
        o.limit,
        out.display().to_string()
    );
    // QEMU needs a moment to listen; gdb retries are not built in.
    std::thread::sleep(Duration::from_secs(2));
    let status = Command::new(GDB.file)
        .args(["-q", "-batch", "-ex", &params, "-x"])
        .arg(&script)
        .arg(&kernel)
        .output()
        .map_err(|e| format!("gdb: {e}"))?;
    let _ = vm.join();
    let text = std::fs::read_to_string(&out).map_err(|e| {
        format!(
            "{}: {e}; gdb said:\n{}",
            out.display(),
            String::from_utf8_lossy(&status.stderr)
        )
    })?;
    let (order, total) = summarize(&text);
    for (f, n) in &order {
        println!("{n:>7}  {f}");
    }
    println!("{total:>7}  in all (trace: {})", out.display());
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::{function, summarize};

    #[test]
    fn names_functions_without_hashes() {
        assert_eq!(
            function("ffffffff801d60d0 kernel::syscall::leaf::answer::h7b3d5d5fe81acbf5 + 4 in section .text"),
            "kernel::syscall::leaf::answer"
        );
        assert_eq!(
            function("ffffffff802bc840 syscall_entry in section .text"),
            "syscall_entry"
        );
        assert_eq!(function("5555 USER"), "USER");
        let (order, total) =
            summarize("1 a + 1 in section .text\n2 b in section .text\n3 a + 2 in section .text\n");
        assert_eq!(order, vec![("a".to_string(), 2), ("b".to_string(), 1)]);
        assert_eq!(total, 3);
    }
}
