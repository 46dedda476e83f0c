//! The benchmark table: medians per system, the ratio, which is better;
//! written to stdout, docs/benchmarks.md and the README.

use std::process::Command;

use super::{Mode, Sample, Value};
use crate::artifacts;

const README_START: &str = "<!-- bench-table:start -->";
const README_END: &str = "<!-- bench-table:end -->";

/// Date, host CPU, QEMU version, flags: what a reader needs to rerun it.
pub fn header(flags: &str, linux_version: &str, runs: usize) -> String {
    let date = Command::new("date")
        .args(["-u", "+%Y-%m-%d"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_else(|| "unknown CPU".into());
    let qemu = Command::new("qemu-system-x86_64")
        .arg("--version")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or("")
                .to_string()
        })
        .unwrap_or_default();
    let commit = artifacts::short_commit();
    format!(
        "Measured {date} at commit {commit} by `cargo xtask bench` on {cpu}, {qemu}.\n\
         Both kernels boot the same initramfs with `rdinit=/usr/bin/rsebench` under\n\
         `{flags}`; Linux is Debian's {linux_version}. The `disk_*` rows come from a second\n\
         boot with a virtio-blk disk (a fresh copy of one ext4 image, mounted at /mnt/disk\n\
         by a script that then execs rsebench) and Debian's sqlite3 in the root.\n\
         Medians of {runs} boot(s) per system;\n\
         \"speed-up\" is how many times better RSE OS is (below 1: Linux is better).\n"
    )
}

/// Said under the icount table when the storage boot was left out.
pub const NO_DISK_UNDER_ICOUNT: &str = "\nThe `disk_*` rows are not measured in this mode: \
     guest time that counts instructions does not count a wait for the disk \
     (docs/benchmarks-method.md).\n";

/// One markdown table for one mode.
pub fn table(mode: Mode, linux: &[Sample], rse: &[Sample]) -> String {
    let mut names: Vec<&str> = Vec::new();
    for s in linux.iter().chain(rse) {
        for (n, _) in &s.values {
            if !names.contains(&n.as_str()) {
                names.push(n);
            }
        }
    }
    let mut out = format!(
        "### {}\n\n| benchmark | Linux | RSE OS | speed-up | better |\n|---|---:|---:|---:|---|\n",
        mode.title()
    );
    for name in names {
        let (l, r) = (median_of(linux, name), median_of(rse, name));
        out.push_str(&row(name, &l, &r));
    }
    let timed = |ss: &[Sample]| ss.iter().any(|s| s.wall_to_init.is_some());
    // Without the main boot (`--rows disk…`) nothing timed init.
    if mode != Mode::TcgIcount && (timed(linux) || timed(rse)) {
        let wall = |ss: &[Sample]| -> Stat {
            let v: Vec<f64> = ss
                .iter()
                .filter_map(|s| s.wall_to_init.map(|d| d.as_secs_f64() * 1e9))
                .collect();
            median(v, "ns", "no init output")
        };
        out.push_str(&row(
            "boot_wall (QEMU start → init's first line)",
            &wall(linux),
            &wall(rse),
        ));
    }
    out
}

/// A median, or why there is none.
enum Stat {
    Num { value: f64, unit: String },
    Missing(String),
}

fn median_of(samples: &[Sample], name: &str) -> Stat {
    let mut unit = String::new();
    let mut why = "no result".to_string();
    let mut v = Vec::new();
    for s in samples {
        match s.values.iter().find(|(n, _)| n == name).map(|(_, v)| v) {
            Some(Value::Num { value, unit: u }) => {
                v.push(*value);
                unit = u.clone();
            }
            Some(Value::Missing(w)) => why = w.clone(),
            None => {}
        }
    }
    median(v, &unit, &why)
}

fn median(mut v: Vec<f64>, unit: &str, why: &str) -> Stat {
    if v.is_empty() {
        return Stat::Missing(why.to_string());
    }
    v.sort_by(f64::total_cmp);
    let m = if v.len() % 2 == 1 {
        v[v.len() / 2]
    } else {
        (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
    };
    Stat::Num {
        value: m,
        unit: unit.to_string(),
    }
}

fn show(s: &Stat) -> String {
    match s {
        Stat::Missing(why) => format!("n/a ({why})"),
        Stat::Num { value, unit } if unit == "ns" && *value >= 1e6 => {
            format!("{:.2} ms", value / 1e6)
        }
        Stat::Num { value, unit } if unit == "ns" && *value >= 1e4 => {
            format!("{:.1} µs", value / 1e3)
        }
        Stat::Num { value, unit } => format!("{value:.1} {unit}"),
    }
}

fn row(name: &str, l: &Stat, r: &Stat) -> String {
    let (speedup, better) = match (l, r) {
        (Stat::Num { value: a, unit }, Stat::Num { value: b, .. }) if *a > 0.0 && *b > 0.0 => {
            // Times: lower is better; rates (MB/s): higher is better.
            let f = if unit == "ns" { a / b } else { b / a };
            let better = if (0.97..=1.03).contains(&f) {
                "even"
            } else if f > 1.0 {
                "RSE OS"
            } else {
                "Linux"
            };
            (format!("{f:.2}×"), better)
        }
        _ => ("–".to_string(), "–"),
    };
    format!(
        "| {name} | {} | {} | {speedup} | {better} |\n",
        show(l),
        show(r)
    )
}

/// docs/benchmarks.md gets the whole report; the README the same text
/// between its markers.
pub fn write_files(text: &str) -> Result<(), String> {
    let root = artifacts::root();
    let doc = root.join("docs/benchmarks.md");
    let body = format!(
        "# Benchmarks: RSE OS next to Linux\n\n\
         Generated by `cargo xtask bench` (see docs/benchmarks-method.md for what each\n\
         benchmark does); rerun it to refresh this file and the README table.\n\
         Where the instructions of the slower paths go: docs/profiles.md\n\
         (`cargo xtask trace`).\n\n{text}"
    );
    std::fs::write(&doc, body).map_err(|e| format!("{}: {e}", doc.display()))?;
    let readme_path = root.join("README.md");
    let readme = std::fs::read_to_string(&readme_path).map_err(|e| format!("README.md: {e}"))?;
    let (Some(a), Some(b)) = (readme.find(README_START), readme.find(README_END)) else {
        return Err(format!(
            "README.md lacks the {README_START} / {README_END} markers"
        ));
    };
    let new = format!("{}{README_START}\n{text}\n{}", &readme[..a], &readme[b..]);
    std::fs::write(&readme_path, new).map_err(|e| format!("README.md: {e}"))?;
    eprintln!("bench: wrote {} and the README table", doc.display());
    Ok(())
}
