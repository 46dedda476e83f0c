//! The initramfs: a cpio "newc" archive (the format Linux unpacks) holding
//! busybox, our test programs, Debian packages (`--pkg`) and files the user
//! adds with `--add`.
//!
//! The root is laid out as Debian 12's merged-/usr: `/bin`, `/sbin`, `/lib`
//! and `/lib64` are symbolic links into `/usr`, and every path given to the
//! archive under them is stored at its `/usr` place (a package's
//! `/lib64/ld-linux-x86-64.so.2` becomes `/usr/lib64/ld-linux-x86-64.so.2`,
//! reached as before through the `/lib64 -> usr/lib64` link), so one name
//! can never be a directory in one package and a link in another.
//!
//! Written by hand: newc is a 110-byte ASCII header per entry, and the
//! crates for it either only read archives or pull in std I/O traits we do
//! not need.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Top-level directories that are links into /usr (merged-/usr).
const MERGED: &[&str] = &["bin", "sbin", "lib", "lib64", "lib32", "libx32"];
/// The links made even when nothing lives behind them (Debian 12 has these).
const MERGED_ALWAYS: &[&str] = &["bin", "sbin", "lib", "lib64"];

/// Owner and permission bits (setuid, setgid and sticky included).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Meta {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

impl Meta {
    /// root-owned with permission bits `mode`.
    pub const fn root(mode: u32) -> Meta {
        Meta {
            mode,
            uid: 0,
            gid: 0,
        }
    }
}

/// An archive being assembled: path → entry, so parents are emitted first.
#[derive(Default)]
pub struct Archive {
    entries: BTreeMap<String, Entry>,
}

enum Entry {
    Dir(Meta),
    File { data: Vec<u8>, meta: Meta },
    Symlink { target: String, meta: Meta },
    CharDev { major: u32, minor: u32, meta: Meta },
}

/// The archive path for `path`: absolute, no empty or `.` components, and
/// under /usr for the merged top-level directories (`/bin/ls` →
/// `/usr/bin/ls`, `/lib64` → `/usr/lib64`).
pub fn canonical(path: &str) -> String {
    let parts: Vec<&str> = path
        .split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .collect();
    let mut out = String::new();
    if let Some(first) = parts.first() {
        if MERGED.contains(first) {
            out.push_str("/usr");
        }
    }
    for p in parts {
        out.push('/');
        out.push_str(p);
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// How [`Archive::add_tree`] treats a host tree.
pub struct TreeOpts<'a> {
    /// Keep the host files' owners (Debian trees unpacked as root); else
    /// everything is root's, like `cpio -R 0:0`.
    pub keep_owner: bool,
    /// Guest paths (canonical) to leave out, with what is below them.
    pub skip: &'a dyn Fn(&str) -> bool,
}

impl Archive {
    fn add_parents(&mut self, path: &str) {
        let mut cur = String::new();
        let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        for p in &parts[..parts.len().saturating_sub(1)] {
            cur.push('/');
            cur.push_str(p);
            self.entries
                .entry(cur.clone())
                .or_insert(Entry::Dir(Meta::root(0o755)));
        }
    }

    /// Puts `e` at canonical `path`; returns whether it replaced a file,
    /// link or node (not a directory).
    fn put(&mut self, path: &str, e: Entry) -> bool {
        let path = canonical(path);
        if path == "/" {
            return false;
        }
        self.add_parents(&path);
        // As dpkg: a directory in a package does not replace a symbolic
        // link already there (its entries go where the link points).
        if matches!(e, Entry::Dir(_))
            && matches!(self.entries.get(&path), Some(Entry::Symlink { .. }))
        {
            return false;
        }
        let old = self.entries.insert(path, e);
        matches!(
            old,
            Some(Entry::File { .. } | Entry::Symlink { .. } | Entry::CharDev { .. })
        )
    }

    /// Whether a file, link, node or directory is at `path`.
    pub fn contains(&self, path: &str) -> bool {
        self.entries.contains_key(&canonical(path))
    }

    /// Adds an (empty) directory, mode 0755.
    pub fn dir(&mut self, path: &str) {
        self.dir_meta(path, Meta::root(0o755));
    }

    /// Adds a directory with owner and mode (an existing one keeps its
    /// entries and takes these).
    pub fn dir_meta(&mut self, path: &str, meta: Meta) {
        self.put(path, Entry::Dir(meta));
    }

    /// Adds a file with permission bits `mode` (e.g. 0o755).
    pub fn file(&mut self, path: &str, data: Vec<u8>, mode: u32) {
        self.file_meta(path, data, Meta::root(mode));
    }

    /// Adds a file with owner and mode; true if it replaced a non-directory.
    pub fn file_meta(&mut self, path: &str, data: Vec<u8>, meta: Meta) -> bool {
        self.put(path, Entry::File { data, meta })
    }

    /// Adds a symbolic link.
    pub fn symlink(&mut self, path: &str, target: &str) {
        self.symlink_meta(path, target, Meta::root(0o777));
    }

    /// Adds a symbolic link with an owner; true if it replaced a
    /// non-directory.
    pub fn symlink_meta(&mut self, path: &str, target: &str, meta: Meta) -> bool {
        self.put(
            path,
            Entry::Symlink {
                target: target.to_string(),
                meta,
            },
        )
    }

    /// Adds a character device node (Linux needs /dev/console in the
    /// archive to give init its stdio; RSE OS makes its own /dev nodes but
    /// accepts these).
    pub fn char_dev(&mut self, path: &str, major: u32, minor: u32, mode: u32) {
        self.put(
            path,
            Entry::CharDev {
                major,
                minor,
                meta: Meta::root(mode),
            },
        );
    }

    /// Adds the host tree `host` at `guest`, recursively: directories (empty
    /// ones too) and files with their permission bits, symbolic links as
    /// links (their targets unchanged). Hard links become separate copies;
    /// sockets, FIFOs and devices are left out. Returns the guest paths
    /// whose earlier file or link was replaced, and the bytes of file data
    /// added.
    pub fn add_tree(
        &mut self,
        host: &Path,
        guest: &str,
        opts: &TreeOpts,
    ) -> Result<(Vec<String>, u64), String> {
        let mut replaced = Vec::new();
        let mut bytes = 0;
        self.add_tree_at(host, &canonical(guest), opts, &mut replaced, &mut bytes)?;
        Ok((replaced, bytes))
    }

    fn add_tree_at(
        &mut self,
        host: &Path,
        guest: &str,
        opts: &TreeOpts,
        replaced: &mut Vec<String>,
        bytes: &mut u64,
    ) -> Result<(), String> {
        let err = |e: std::io::Error| format!("{}: {e}", host.display());
        let md = std::fs::symlink_metadata(host).map_err(err)?;
        let guest = canonical(guest);
        if (opts.skip)(&guest) {
            return Ok(());
        }
        let meta = Meta {
            mode: md.mode() & 0o7777,
            uid: if opts.keep_owner { md.uid() } else { 0 },
            gid: if opts.keep_owner { md.gid() } else { 0 },
        };
        let ft = md.file_type();
        if ft.is_dir() {
            self.dir_meta(&guest, meta);
            let mut names: Vec<_> = std::fs::read_dir(host)
                .map_err(err)?
                .map(|e| e.map(|e| e.file_name()))
                .collect::<Result<_, _>>()
                .map_err(err)?;
            names.sort();
            for n in names {
                let child = format!("{}/{}", guest.trim_end_matches('/'), n.to_string_lossy());
                self.add_tree_at(&host.join(&n), &child, opts, replaced, bytes)?;
            }
        } else if ft.is_symlink() {
            let target = std::fs::read_link(host).map_err(err)?;
            if self.symlink_meta(&guest, &target.to_string_lossy(), meta) {
                replaced.push(guest);
            }
        } else if ft.is_file() {
            let data = std::fs::read(host).map_err(err)?;
            *bytes += data.len() as u64;
            if self.file_meta(&guest, data, meta) {
                replaced.push(guest);
            }
        }
        Ok(())
    }

    /// Serialises the archive in newc format, with the merged-/usr links
    /// and the TRAILER!!! entry.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut links: Vec<(String, Entry)> = Vec::new();
        for top in MERGED {
            let usr = format!("/usr/{top}");
            let present = self.entries.contains_key(&usr);
            if present || MERGED_ALWAYS.contains(top) {
                links.push((
                    format!("/{top}"),
                    Entry::Symlink {
                        target: format!("usr/{top}"),
                        meta: Meta::root(0o777),
                    },
                ));
                if !present {
                    links.push((usr, Entry::Dir(Meta::root(0o755))));
                }
            }
        }
        if !links.is_empty() && !self.entries.contains_key("/usr") {
            links.push(("/usr".into(), Entry::Dir(Meta::root(0o755))));
        }
        let mut all: Vec<(&str, &Entry)> = self
            .entries
            .iter()
            .map(|(p, e)| (p.as_str(), e))
            .chain(links.iter().map(|(p, e)| (p.as_str(), e)))
            .collect();
        // Parents before children.
        all.sort_by(|a, b| a.0.cmp(b.0));
        for (ino, (path, e)) in all.into_iter().enumerate() {
            let name = path.trim_start_matches('/');
            let (mode, data, rdev, meta): (u32, &[u8], (u32, u32), Meta) = match e {
                Entry::Dir(m) => (0o040000 | m.mode, &[], (0, 0), *m),
                Entry::File { data, meta } => (0o100000 | meta.mode, data, (0, 0), *meta),
                Entry::Symlink { target, meta } => (0o120777, target.as_bytes(), (0, 0), *meta),
                Entry::CharDev { major, minor, meta } => {
                    (0o020000 | meta.mode, &[], (*major, *minor), *meta)
                }
            };
            push_entry(&mut out, ino as u32 + 1, mode, meta, name, data, rdev);
        }
        push_entry(&mut out, 0, 0, Meta::root(0), "TRAILER!!!", &[], (0, 0));
        out
    }
}

fn push_entry(
    out: &mut Vec<u8>,
    ino: u32,
    mode: u32,
    meta: Meta,
    name: &str,
    data: &[u8],
    (rdev_major, rdev_minor): (u32, u32),
) {
    let nlink = if mode & 0o170000 == 0o040000 { 2 } else { 1 };
    let fields = [
        ino,
        mode,
        meta.uid,
        meta.gid,
        nlink,
        0,
        data.len() as u32,
        0,
        0,
        rdev_major,
        rdev_minor,
        name.len() as u32 + 1,
        0,
    ];
    out.extend_from_slice(b"070701");
    for f in fields {
        out.extend_from_slice(format!("{f:08x}").as_bytes());
    }
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    pad4(out);
    out.extend_from_slice(data);
    pad4(out);
}

fn pad4(out: &mut Vec<u8>) {
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (name, mode, uid, data) of every entry, in order.
    fn entries(b: &[u8]) -> Vec<(String, u32, u32, Vec<u8>)> {
        let mut out = Vec::new();
        let mut pos = 0;
        let field = |at: usize, i: usize| {
            u32::from_str_radix(
                std::str::from_utf8(&b[at + 6 + 8 * i..at + 14 + 8 * i]).unwrap(),
                16,
            )
            .unwrap()
        };
        while pos < b.len() {
            assert_eq!(&b[pos..pos + 6], b"070701");
            let (mode, uid, size, namesize) = (
                field(pos, 1),
                field(pos, 2),
                field(pos, 6) as usize,
                field(pos, 11) as usize,
            );
            let name = String::from_utf8(b[pos + 110..pos + 110 + namesize - 1].to_vec()).unwrap();
            let data_at = (pos + 110 + namesize).next_multiple_of(4);
            out.push((name.clone(), mode, uid, b[data_at..data_at + size].to_vec()));
            pos = (data_at + size).next_multiple_of(4);
            if name == "TRAILER!!!" {
                break;
            }
        }
        out
    }

    #[test]
    fn canonical_paths_are_merged_usr() {
        assert_eq!(canonical("/bin/ls"), "/usr/bin/ls");
        assert_eq!(canonical("bin"), "/usr/bin");
        assert_eq!(
            canonical("/lib64/ld-linux-x86-64.so.2"),
            "/usr/lib64/ld-linux-x86-64.so.2"
        );
        assert_eq!(
            canonical("/lib/x86_64-linux-gnu/"),
            "/usr/lib/x86_64-linux-gnu"
        );
        assert_eq!(canonical("/library/x"), "/library/x");
        assert_eq!(canonical("/./etc//passwd"), "/etc/passwd");
        assert_eq!(canonical("/"), "/");
    }

    #[test]
    fn newc_layout() {
        let mut a = Archive::default();
        a.file("/bin/x", b"hello".to_vec(), 0o755);
        a.file_meta(
            "/etc/shadow",
            b"s".to_vec(),
            Meta {
                mode: 0o640,
                uid: 0,
                gid: 42,
            },
        );
        a.symlink("/lib64/ld.so", "/lib/x/ld.so");
        a.symlink("/opt/d", "real");
        a.dir("/opt/d");
        let b = a.to_bytes();
        assert!(b.len().is_multiple_of(4));
        let e = entries(&b);
        let names: Vec<&str> = e.iter().map(|x| x.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "bin",
                "etc",
                "etc/shadow",
                "lib",
                "lib64",
                "opt",
                "opt/d",
                "sbin",
                "usr",
                "usr/bin",
                "usr/bin/x",
                "usr/lib",
                "usr/lib64",
                "usr/lib64/ld.so",
                "usr/sbin",
                "TRAILER!!!"
            ]
        );
        let get = |n: &str| e.iter().find(|x| x.0 == n).unwrap();
        assert_eq!(get("bin").1, 0o120777);
        assert_eq!(get("bin").3, b"usr/bin");
        assert_eq!(get("usr/bin/x").1, 0o100755);
        assert_eq!(get("usr/bin/x").3, b"hello");
        assert_eq!(get("etc/shadow").1, 0o100640);
        assert_eq!(get("usr/lib64/ld.so").3, b"/lib/x/ld.so");
        assert_eq!(get("opt/d").1, 0o120777);
    }

    #[test]
    fn add_tree_keeps_modes_links_and_empty_dirs() {
        use std::os::unix::fs::PermissionsExt;
        let d = std::env::temp_dir().join(format!("xtask-tree-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("sub/empty")).unwrap();
        std::fs::write(d.join("sub/run"), b"#!/bin/sh\n").unwrap();
        std::fs::set_permissions(d.join("sub/run"), std::fs::Permissions::from_mode(0o750))
            .unwrap();
        std::fs::set_permissions(d.join("sub/empty"), std::fs::Permissions::from_mode(0o1777))
            .unwrap();
        std::os::unix::fs::symlink("sub/run", d.join("link")).unwrap();
        let mut a = Archive::default();
        a.file("/opt/t/link", b"old".to_vec(), 0o644);
        let skip = |_: &str| false;
        let opts = TreeOpts {
            keep_owner: false,
            skip: &skip,
        };
        let (replaced, bytes) = a.add_tree(&d, "/opt/t", &opts).unwrap();
        std::fs::remove_dir_all(&d).unwrap();
        assert_eq!(replaced, ["/opt/t/link"]);
        assert_eq!(bytes, 10);
        let e = entries(&a.to_bytes());
        let get = |n: &str| e.iter().find(|x| x.0 == n).unwrap().clone();
        assert_eq!(get("opt/t/link").1, 0o120777);
        assert_eq!(get("opt/t/link").3, b"sub/run");
        assert_eq!(get("opt/t/sub/run").1, 0o100750);
        assert_eq!(get("opt/t/sub/empty").1, 0o041777);
        assert_eq!(get("opt/t/sub/run").2, 0);
    }
}
