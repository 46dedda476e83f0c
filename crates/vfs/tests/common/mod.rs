//! Helpers shared by the integration tests.
#![allow(dead_code)]

use abi::KResult;
use vfs::{Ino, Timespec, Tmpfs, TmpfsConfig, ROOT_INO};

pub fn fs() -> Tmpfs {
    Tmpfs::new(TmpfsConfig::default(), Timespec::from_secs(1000))
}

/// `mkdir -p`, from the root.
pub fn mkdirs(fs: &mut Tmpfs, path: &[u8]) -> Ino {
    let mut cur = ROOT_INO;
    for c in path.split(|&b| b == b'/').filter(|c| !c.is_empty()) {
        cur = match fs.lookup_in(cur, c) {
            Ok(i) => i,
            Err(_) => fs.mkdir(cur, c, 0o755).unwrap(),
        };
    }
    cur
}

/// Creates a file at absolute `path` holding `data`.
pub fn file(fs: &mut Tmpfs, path: &[u8], data: &[u8]) -> Ino {
    let (dir, name) = fs.lookup_parent(ROOT_INO, path).unwrap();
    let ino = fs.create(dir, &name, 0o644).unwrap();
    assert_eq!(fs.write(ino, 0, data).unwrap(), data.len());
    ino
}

pub fn resolve(fs: &Tmpfs, path: &[u8]) -> KResult<Ino> {
    fs.lookup(ROOT_INO, path, true)
}

pub fn read_all(fs: &mut Tmpfs, ino: Ino) -> Vec<u8> {
    let size = fs.stat(ino).unwrap().size as usize;
    let mut buf = vec![0; size];
    assert_eq!(fs.read(ino, 0, &mut buf).unwrap(), size);
    buf
}

/// Names listed by readdir, "." and ".." included.
pub fn list(fs: &Tmpfs, dir: Ino) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut cookie = 0;
    while let Some((e, next)) = fs.readdir(dir, cookie).unwrap() {
        out.push(e.name.to_vec());
        cookie = next;
    }
    out
}
