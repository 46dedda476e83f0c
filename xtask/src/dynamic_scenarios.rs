//! Dynamically linked programs under RSE OS: the host's own Debian
//! binaries (coreutils, bash) with the libraries `ldd` names for them and
//! the dynamic linker at their Debian paths, plus copies whose PT_INTERP
//! names a missing or broken interpreter (the errors Linux gives).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::artifacts::{self, Addition};

/// The host programs the scenario runs (each needs only libraries every
/// Debian system has).
const PROGRAMS: &[&str] = &[
    "/usr/bin/seq",
    "/usr/bin/sort",
    "/usr/bin/bash",
    "/usr/bin/ls",
];

/// The interpreter path Debian's x86-64 binaries carry.
const LD_SO: &str = "/lib64/ld-linux-x86-64.so.2";

/// What the guest runs, and what it must print (the same programs' output
/// on Linux, which does not depend on the machine).
const CMD: &str = "/mnt/seq 3; printf 'b\\na\\nc\\n' | /mnt/sort; \
    /mnt/bash -c 'x=$((2**10)); echo bash $x ${BASH_VERSINFO[0]}'; \
    /mnt/ls /mnt | /mnt/sort; \
    /lib64/ld-linux-x86-64.so.2 --list /mnt/seq | grep -c libc.so.6; \
    /mnt/no-interp; echo missing=$?; /mnt/bad-interp; echo broken=$?; echo alive";

/// Every library `ldd` lists for `bin`, as (host path, guest path): the
/// same path, which is Debian's.
fn libraries(bin: &str) -> Result<Vec<PathBuf>, String> {
    let out = Command::new("ldd")
        .arg(bin)
        .output()
        .map_err(|e| format!("ldd {bin}: {e}"))?;
    if !out.status.success() {
        return Err(format!("ldd {bin} failed"));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split("=>").nth(1))
        .filter_map(|r| r.split_whitespace().next())
        .filter(|p| p.starts_with('/'))
        .map(PathBuf::from)
        .collect())
}

/// A copy of `bin` whose PT_INTERP path is replaced by `interp` (same
/// length), written under target/rse.
fn with_interp(bin: &str, interp: &str, name: &str) -> Result<PathBuf, String> {
    assert_eq!(interp.len(), LD_SO.len(), "PT_INTERP is patched in place");
    let mut data = std::fs::read(bin).map_err(|e| format!("{bin}: {e}"))?;
    let at = data
        .windows(LD_SO.len())
        .position(|w| w == LD_SO.as_bytes())
        .ok_or_else(|| format!("{bin}: no {LD_SO} in it"))?;
    data[at..at + interp.len()].copy_from_slice(interp.as_bytes());
    let out = artifacts::out_dir().join(name);
    artifacts::write_with_mode(&out, &data, 0o755)?;
    Ok(out)
}

/// Boots with the programs and their libraries and checks what they print.
pub fn host_programs() -> Result<(), String> {
    let mut adds: Vec<Addition> = Vec::new();
    let mut add = |host: PathBuf, guest: String| {
        if !adds.iter().any(|a| a.guest == guest) {
            adds.push(Addition { host, guest });
        }
    };
    add(PathBuf::from(LD_SO), LD_SO.to_string());
    for p in PROGRAMS {
        let name = Path::new(p)
            .file_name()
            .unwrap_or_default()
            .to_string_lossy();
        add(PathBuf::from(p), format!("/mnt/{name}"));
        for lib in libraries(p)? {
            let guest = lib.to_string_lossy().into_owned();
            add(lib, guest);
        }
    }
    // A PT_INTERP naming nothing (ENOENT: the shell's 127) and one naming
    // a file that is not an ELF (ELIBBAD: 126).
    add(
        with_interp(PROGRAMS[0], "/lib64/ld-nxist-x86-64.so.2", "no-interp")?,
        "/mnt/no-interp".into(),
    );
    add(
        with_interp(PROGRAMS[0], "/mnt/junk/ld-x86-64.so.2.xx", "bad-interp")?,
        "/mnt/bad-interp".into(),
    );
    let junk = artifacts::out_dir().join("junk-ld.so");
    artifacts::write_with_mode(
        &junk,
        b"#!/bin/false\nthis is not a dynamic linker\n",
        0o755,
    )?;
    add(junk, "/mnt/junk/ld-x86-64.so.2.xx".into());

    let (out, status) = crate::scenarios::exec_in_guest(CMD, &adds, None, "")?;
    let out = out.replace("\r\n", "\n");
    let want = "1\n2\n3\na\nb\nc\nbash 1024 5\n\
                bad-interp\nbash\njunk\nls\nno-interp\nseq\nsort\n\
                1\nmissing=127\nbroken=126\nalive\n";
    // The shell's messages for the two failed execs go to stderr, which
    // the console shows too: compare the lines of stdout we know.
    let got: Vec<&str> = out
        .lines()
        .filter(|l| !l.contains("no-interp:") && !l.contains("bad-interp:"))
        .collect();
    let want: Vec<&str> = want.lines().collect();
    if got != want || status != 0 {
        return Err(format!(
            "dynamic programs printed (status {status}):\n{out}\nexpected:\n{}",
            want.join("\n")
        ));
    }
    Ok(())
}
