//! Debian packages for the guest root (`cargo xtask run --pkg NAME`).
//!
//! apt resolves, downloads and verifies; nothing is installed on the host:
//!
//! - apt runs against a private dpkg status (`target/debs/apt/status`) in
//!   which no package is installed except [`BASE_PROVIDED`], packages that
//!   only maintainer scripts need (dpkg, debconf, …), listed without
//!   dependencies so that apt neither pulls them in nor asks for theirs.
//!   `apt-get install -s` with that status lists the whole closure of
//!   Depends and Pre-Depends (alternatives and virtual packages resolved by
//!   apt as on a real install; no Recommends);
//! - the missing `.deb` files are fetched by `apt-get install
//!   --download-only` into `target/debs/` (apt's own names,
//!   `NAME_VERSION_ARCH.deb`, `:` quoted as `%3a`), checked against the
//!   archive's signed hashes by apt;
//! - each is unpacked once with `dpkg-deb -x` into
//!   `target/debs/unpacked/NAME_VERSION_ARCH/`.
//!
//! A second run with the same packages and apt lists finds everything
//! there and touches no network. Maintainer scripts are not run:
//! [`base_files`] gives what they and programs expect of a Debian system.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Packages whose only role in a root built from packages would be
/// running maintainer scripts: taken as present unless asked for by name
/// (dpkg alone would bring GNU tar and nine libraries for sqlite3).
pub const BASE_PROVIDED: &[&str] = &[
    "dpkg",
    "install-info",
    "debconf",
    "init-system-helpers",
    "adduser",
    "ucf",
    "lsb-base",
];

/// One package of the closure, unpacked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unpacked {
    pub name: String,
    pub version: String,
    pub arch: String,
    /// `dpkg-deb -x` of the package.
    pub tree: PathBuf,
}

/// A package apt chose: name, version, architecture.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Chosen {
    name: String,
    version: String,
    arch: String,
}

impl Chosen {
    /// apt's file name for it in the archives directory.
    fn stem(&self) -> String {
        let q = |s: &str| s.replace('_', "%5f").replace(':', "%3a");
        format!(
            "{}_{}_{}",
            q(&self.name),
            q(&self.version),
            q(&self.arch).replace('.', "%2e")
        )
    }
}

/// `target/debs`: downloaded packages, apt's private state, unpacked trees.
pub fn debs_dir() -> PathBuf {
    crate::artifacts::root().join("target/debs")
}

/// The packages `names` and everything they depend on, downloaded (if not
/// cached) and unpacked, in apt's install order.
pub fn prepare(names: &[String]) -> Result<Vec<Unpacked>, String> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    if let Some(bad) = names
        .iter()
        .find(|n| n.is_empty() || n.starts_with('-') || n.contains(char::is_whitespace))
    {
        return Err(format!("--pkg {bad:?}: not a package name"));
    }
    for tool in ["apt-get", "apt-cache", "dpkg-deb"] {
        if Command::new(tool).arg("--version").output().is_err() {
            return Err(format!("--pkg needs {tool} (a Debian host)"));
        }
    }
    let dir = debs_dir();
    for d in [dir.join("partial"), dir.join("apt"), dir.join("unpacked")] {
        std::fs::create_dir_all(&d).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    let chosen = match fetch(&dir, names) {
        Ok(c) => c,
        // apt's lists may be missing (a fresh machine) or stale (the
        // mirror dropped the version they name): refresh them once, as
        // deps::ensure does, when we may.
        Err(e) if crate::deps::is_root() => {
            eprintln!("xtask: {e}\nxtask: apt-get update, then trying again");
            let _ = Command::new("apt-get")
                .args(["update", "-qq"])
                .env("DEBIAN_FRONTEND", "noninteractive")
                .status();
            fetch(&dir, names)?
        }
        Err(e) => return Err(e),
    };
    chosen.iter().map(|c| unpack(&dir, c)).collect()
}

/// Resolves `names` and downloads the packages not yet in `dir`.
fn fetch(dir: &Path, names: &[String]) -> Result<Vec<Chosen>, String> {
    let chosen = resolve_cached(names)?;
    let missing = chosen
        .iter()
        .filter(|c| !dir.join(format!("{}.deb", c.stem())).exists())
        .count();
    if missing > 0 {
        eprintln!(
            "xtask: downloading {missing} of {} Debian packages into {}",
            chosen.len(),
            dir.display()
        );
        let out = apt("apt-get")
            .args(["install", "--download-only", "-y", "-q"])
            .args(names)
            .output()
            .map_err(|e| format!("apt-get: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "apt-get install --download-only {} failed:\n{}",
                names.join(" "),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    Ok(chosen)
}

/// apt-get/apt-cache with the private state: our status, cache and lock
/// files (`target/debs/apt/`), our archives directory, the host's lists
/// and sources.
fn apt(tool: &str) -> Command {
    let dir = debs_dir();
    let mut c = Command::new(tool);
    let opt = |k: &str, v: &Path| format!("{k}={}", v.display());
    c.env("DEBIAN_FRONTEND", "noninteractive")
        .env("LC_ALL", "C")
        .arg("-o")
        .arg(opt("Dir::State::status", &dir.join("apt/status")))
        .arg("-o")
        .arg(opt(
            "Dir::State::extended_states",
            &dir.join("apt/extended_states"),
        ))
        .arg("-o")
        .arg(opt("Dir::Cache", &dir.join("apt")))
        .arg("-o")
        .arg(opt("Dir::Cache::archives", &dir))
        // Keep apt's binary cache of the lists (Docker-style images turn
        // it off): later runs read it instead of parsing the lists again.
        .args(["-o", "Dir::Cache::pkgcache=pkgcache.bin"])
        .args(["-o", "Dir::Cache::srcpkgcache=srcpkgcache.bin"])
        .args(["-o", "APT::Install-Recommends=false"])
        .args(["-o", "APT::Install-Suggests=false"]);
    c
}

/// [`resolve`], remembered in `target/debs/apt/resolved/` under a key
/// made of the names and of everything apt's answer depends on (the
/// lists' and apt configuration's names, sizes and times): a warm run runs
/// no apt at all.
fn resolve_cached(names: &[String]) -> Result<Vec<Chosen>, String> {
    use std::hash::{Hash, Hasher};
    use std::os::unix::fs::MetadataExt;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (names, BASE_PROVIDED).hash(&mut h);
    for d in [
        "/var/lib/apt/lists",
        "/etc/apt/sources.list.d",
        "/etc/apt/preferences.d",
        "/etc/apt/apt.conf.d",
    ] {
        let mut files: Vec<_> = std::fs::read_dir(d)
            .map(|r| r.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        files.push(PathBuf::from("/etc/apt/sources.list"));
        files.sort();
        for f in files {
            if let Ok(m) = std::fs::metadata(&f) {
                (f, m.size(), m.mtime(), m.mtime_nsec()).hash(&mut h);
            }
        }
    }
    let file = debs_dir()
        .join("apt/resolved")
        .join(format!("{:016x}", h.finish()));
    if let Ok(text) = std::fs::read_to_string(&file) {
        let chosen: Vec<Chosen> = text
            .lines()
            .filter_map(|l| {
                let mut w = l.split(' ');
                Some(Chosen {
                    name: w.next()?.to_string(),
                    version: w.next()?.to_string(),
                    arch: w.next()?.to_string(),
                })
            })
            .collect();
        if !chosen.is_empty() {
            return Ok(chosen);
        }
    }
    let chosen = resolve(names)?;
    let text: String = chosen
        .iter()
        .map(|c| format!("{} {} {}\n", c.name, c.version, c.arch))
        .collect();
    // Written aside and renamed: a run reading it meanwhile sees all or
    // nothing.
    let tmp = file.with_extension(std::process::id().to_string());
    let _ = std::fs::create_dir_all(debs_dir().join("apt/resolved"));
    if std::fs::write(&tmp, text).is_ok() {
        let _ = std::fs::rename(&tmp, &file);
    }
    Ok(chosen)
}

/// Writes the private status (rewritten only when it changes, so that apt
/// keeps its cache) and asks apt for the closure of `names`.
fn resolve(names: &[String]) -> Result<Vec<Chosen>, String> {
    let dir = debs_dir();
    let status = dir.join("apt/status");
    if !status.exists() {
        std::fs::write(&status, "").map_err(|e| format!("{}: {e}", status.display()))?;
    }
    let base: Vec<&str> = BASE_PROVIDED
        .iter()
        .copied()
        .filter(|b| !names.iter().any(|n| n.split('=').next() == Some(*b)))
        .collect();
    let out = apt("apt-cache")
        .args(["show", "--no-all-versions"])
        .args(&base)
        .output()
        .map_err(|e| format!("apt-cache: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "apt-cache show {} failed: {}",
            base.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let text = status_stanzas(&String::from_utf8_lossy(&out.stdout));
    if std::fs::read_to_string(&status).ok().as_deref() != Some(text.as_str()) {
        std::fs::write(&status, &text).map_err(|e| format!("{}: {e}", status.display()))?;
    }
    let out = apt("apt-get")
        .args(["install", "-s"])
        .args(names)
        .output()
        .map_err(|e| format!("apt-get: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "apt-get cannot resolve {}: {}",
            names.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let chosen = parse_simulation(&String::from_utf8_lossy(&out.stdout));
    if chosen.is_empty() {
        return Err(format!("apt-get chose no package for {}", names.join(" ")));
    }
    Ok(chosen)
}

/// dpkg status stanzas ("installed", no dependencies) for the packages of
/// `apt-cache show` output.
fn status_stanzas(show: &str) -> String {
    let mut out = String::new();
    for stanza in show.split("\n\n") {
        let field = |k: &str| {
            stanza
                .lines()
                .find_map(|l| l.strip_prefix(k).map(|v| v.trim().to_string()))
        };
        if let (Some(p), Some(v), Some(a)) =
            (field("Package:"), field("Version:"), field("Architecture:"))
        {
            out.push_str(&format!(
                "Package: {p}\nStatus: install ok installed\nVersion: {v}\nArchitecture: {a}\n\
                 Maintainer: RSE OS xtask <none>\nDescription: taken as present in the guest root\n\n"
            ));
        }
    }
    out
}

/// The `Inst NAME (VERSION RELEASE… [ARCH])` lines of `apt-get -s`.
fn parse_simulation(out: &str) -> Vec<Chosen> {
    out.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("Inst ")?;
            let (name, rest) = rest.split_once(' ')?;
            let inner = rest.strip_prefix('(')?;
            let inner = &inner[..inner.find(')')?];
            let version = inner.split_whitespace().next()?;
            let arch = &inner[inner.rfind('[')? + 1..inner.rfind(']')?];
            let name = name.split(':').next()?;
            Some(Chosen {
                name: name.to_string(),
                version: version.to_string(),
                arch: arch.to_string(),
            })
        })
        .collect()
}

/// `dpkg-deb -x` of one package, done once: into a scratch directory
/// renamed into place, so an interrupted run leaves no half tree.
fn unpack(dir: &Path, c: &Chosen) -> Result<Unpacked, String> {
    let stem = c.stem();
    let deb = dir.join(format!("{stem}.deb"));
    let tree = dir.join("unpacked").join(&stem);
    if !tree.is_dir() {
        if !deb.exists() {
            return Err(format!("{} was not downloaded", deb.display()));
        }
        let tmp = dir
            .join("unpacked")
            .join(format!(".{stem}.{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        let st = Command::new("dpkg-deb")
            .arg("-x")
            .arg(&deb)
            .arg(&tmp)
            .status()
            .map_err(|e| format!("dpkg-deb: {e}"))?;
        if !st.success() {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(format!("dpkg-deb -x {} failed", deb.display()));
        }
        if std::fs::rename(&tmp, &tree).is_err() {
            // Another run unpacked it first.
            let _ = std::fs::remove_dir_all(&tmp);
        }
    }
    Ok(Unpacked {
        name: c.name.clone(),
        version: c.version.clone(),
        arch: c.arch.clone(),
        tree,
    })
}

/// Guest paths left out of packages: documentation, manual pages and
/// message catalogues, which no program needs to run (3.2 of the 50.6 MB
/// that sqlite3, python3 and their dependencies unpack to).
pub fn stripped(guest: &str) -> bool {
    [
        "/usr/share/doc",
        "/usr/share/man",
        "/usr/share/info",
        "/usr/share/locale",
        "/usr/share/lintian",
        "/usr/share/bug",
    ]
    .iter()
    .any(|p| guest == *p || guest.strip_prefix(p).is_some_and(|r| r.starts_with('/')))
}

/// What maintainer scripts and base-files would have made and programs
/// look for, as (guest path, contents): users and groups (base-passwd's
/// static entries, as its postinst installs them), name-service switch, hosts. No `/etc/ld.so.cache`:
/// Debian's ld.so searches /lib/x86_64-linux-gnu and
/// /usr/lib/x86_64-linux-gnu without one.
pub fn base_files() -> &'static [(&'static str, &'static str)] {
    &[
        (
            "/etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\n\
             daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n\
             bin:x:2:2:bin:/bin:/usr/sbin/nologin\n\
             sys:x:3:3:sys:/dev:/usr/sbin/nologin\n\
             sync:x:4:65534:sync:/bin:/bin/sync\n\
             games:x:5:60:games:/usr/games:/usr/sbin/nologin\n\
             man:x:6:12:man:/var/cache/man:/usr/sbin/nologin\n\
             lp:x:7:7:lp:/var/spool/lpd:/usr/sbin/nologin\n\
             mail:x:8:8:mail:/var/mail:/usr/sbin/nologin\n\
             news:x:9:9:news:/var/spool/news:/usr/sbin/nologin\n\
             uucp:x:10:10:uucp:/var/spool/uucp:/usr/sbin/nologin\n\
             proxy:x:13:13:proxy:/bin:/usr/sbin/nologin\n\
             www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\n\
             backup:x:34:34:backup:/var/backups:/usr/sbin/nologin\n\
             list:x:38:38:Mailing List Manager:/var/list:/usr/sbin/nologin\n\
             irc:x:39:39:ircd:/run/ircd:/usr/sbin/nologin\n\
             nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
        ),
        (
            "/etc/group",
            "root:x:0:\ndaemon:x:1:\nbin:x:2:\nsys:x:3:\nadm:x:4:\ntty:x:5:\n\
             disk:x:6:\nlp:x:7:\nmail:x:8:\nnews:x:9:\nuucp:x:10:\nman:x:12:\n\
             proxy:x:13:\nkmem:x:15:\ndialout:x:20:\nfax:x:21:\nvoice:x:22:\n\
             cdrom:x:24:\nfloppy:x:25:\ntape:x:26:\nsudo:x:27:\naudio:x:29:\n\
             dip:x:30:\nwww-data:x:33:\nbackup:x:34:\noperator:x:37:\nlist:x:38:\n\
             irc:x:39:\nsrc:x:40:\nshadow:x:42:\nutmp:x:43:\nvideo:x:44:\n\
             sasl:x:45:\nplugdev:x:46:\nstaff:x:50:\ngames:x:60:\nusers:x:100:\n\
             nogroup:x:65534:\n",
        ),
        (
            "/etc/nsswitch.conf",
            "passwd: files\ngroup: files\nshadow: files\ngshadow: files\n\
             hosts: files dns\nnetworks: files\nprotocols: files\nservices: files\n\
             ethers: files\nrpc: files\n",
        ),
        (
            "/etc/hosts",
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
        ),
        ("/etc/hostname", "rse\n"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulation_lines() {
        let out = "NOTE: x\nInst libc6 (2.36-9+deb12u14 Debian:12.14/oldstable [amd64]) []\n\
                   Conf libc6 (2.36-9+deb12u14 Debian:12.14/oldstable [amd64])\n\
                   Inst zlib1g (1:1.2.13.dfsg-1 Debian:12.14/oldstable, Debian-Security:12/oldstable-security [amd64])\n\
                   Inst readline-common (8.2-1.3 Debian:12.14/oldstable [all])\n";
        let c = parse_simulation(out);
        assert_eq!(c.len(), 3);
        assert_eq!(c[0].stem(), "libc6_2.36-9+deb12u14_amd64");
        assert_eq!(c[1].stem(), "zlib1g_1%3a1.2.13.dfsg-1_amd64");
        assert_eq!(c[2].arch, "all");
    }

    #[test]
    fn stanzas_have_no_dependencies() {
        let show = "Package: dpkg\nVersion: 1.21.23\nArchitecture: amd64\nPre-Depends: libc6\n\
                    Description: x\n\nPackage: debconf\nVersion: 1.5.82\nArchitecture: all\n";
        let s = status_stanzas(show);
        assert!(s.contains("Package: dpkg\nStatus: install ok installed\nVersion: 1.21.23\n"));
        assert!(s.contains("Package: debconf\n"));
        assert!(!s.contains("Depends"));
    }

    #[test]
    fn strip_list() {
        assert!(stripped("/usr/share/doc"));
        assert!(stripped("/usr/share/doc/libc6/copyright"));
        assert!(!stripped("/usr/share/docs"));
        assert!(!stripped("/usr/bin/sqlite3"));
    }
}
