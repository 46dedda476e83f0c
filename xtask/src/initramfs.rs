//! The initramfs: a cpio "newc" archive (the format Linux unpacks) holding
//! busybox, our test programs, and files the user adds with `--add`.
//!
//! Written by hand: newc is a 110-byte ASCII header per entry, and the
//! crates for it either only read archives or pull in std I/O traits we do
//! not need.

use std::collections::BTreeMap;

/// An archive being assembled: path → entry, so parents are emitted first.
#[derive(Default)]
pub struct Archive {
    entries: BTreeMap<String, Entry>,
}

enum Entry {
    Dir,
    File { data: Vec<u8>, mode: u32 },
    Symlink(String),
    CharDev { major: u32, minor: u32, mode: u32 },
}

impl Archive {
    fn add_parents(&mut self, path: &str) {
        let mut cur = String::new();
        let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        for p in &parts[..parts.len().saturating_sub(1)] {
            cur.push('/');
            cur.push_str(p);
            self.entries.entry(cur.clone()).or_insert(Entry::Dir);
        }
    }

    /// Adds an (empty) directory.
    pub fn dir(&mut self, path: &str) {
        self.add_parents(path);
        self.entries.insert(path.to_string(), Entry::Dir);
    }

    /// Adds a file with permission bits `mode` (e.g. 0o755).
    pub fn file(&mut self, path: &str, data: Vec<u8>, mode: u32) {
        self.add_parents(path);
        self.entries
            .insert(path.to_string(), Entry::File { data, mode });
    }

    /// Adds a symbolic link.
    pub fn symlink(&mut self, path: &str, target: &str) {
        self.add_parents(path);
        self.entries
            .insert(path.to_string(), Entry::Symlink(target.to_string()));
    }

    /// Adds a character device node (Linux needs /dev/console in the
    /// archive to give init its stdio; RSE OS makes its own /dev nodes but
    /// accepts these).
    pub fn char_dev(&mut self, path: &str, major: u32, minor: u32, mode: u32) {
        self.add_parents(path);
        self.entries
            .insert(path.to_string(), Entry::CharDev { major, minor, mode });
    }

    /// Serialises the archive in newc format, with the TRAILER!!! entry.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (ino, (path, e)) in self.entries.iter().enumerate() {
            let name = path.trim_start_matches('/');
            let (mode, data, rdev): (u32, &[u8], (u32, u32)) = match e {
                Entry::Dir => (0o040755, &[], (0, 0)),
                Entry::File { data, mode } => (0o100000 | mode, data, (0, 0)),
                Entry::Symlink(t) => (0o120777, t.as_bytes(), (0, 0)),
                Entry::CharDev { major, minor, mode } => (0o020000 | mode, &[], (*major, *minor)),
            };
            push_entry(&mut out, ino as u32 + 1, mode, name, data, rdev);
        }
        push_entry(&mut out, 0, 0, "TRAILER!!!", &[], (0, 0));
        out
    }
}

fn push_entry(
    out: &mut Vec<u8>,
    ino: u32,
    mode: u32,
    name: &str,
    data: &[u8],
    (rdev_major, rdev_minor): (u32, u32),
) {
    let nlink = if mode & 0o170000 == 0o040000 { 2 } else { 1 };
    let fields = [
        ino,
        mode,
        0,
        0,
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

    #[test]
    fn newc_layout() {
        let mut a = Archive::default();
        a.file("/bin/x", b"hello".to_vec(), 0o755);
        let b = a.to_bytes();
        // "/bin" directory first, then "/bin/x", then the trailer.
        assert_eq!(&b[..6], b"070701");
        let name_at = 110;
        assert_eq!(&b[name_at..name_at + 4], b"bin\0");
        let second = b.windows(6).skip(1).position(|w| w == b"070701").unwrap() + 1;
        assert!(second.is_multiple_of(4));
        assert_eq!(&b[second + 110..second + 116], b"bin/x\0");
        assert!(b.windows(10).any(|w| w == b"TRAILER!!!"));
        assert!(b.windows(5).any(|w| w == b"hello"));
        assert!(b.len().is_multiple_of(4));
    }
}
