//! Random operation sequences: whatever succeeds or fails, the tree stays
//! consistent (fsck), failed operations change nothing, file contents
//! follow a simple model, and path_of inverts lookup.

mod common;

use std::collections::BTreeMap;

use abi::linux_raw_sys::general as lx;
use abi::KResult;
use proptest::prelude::*;
use vfs::{FileType, Ino, Stat, Timespec, Tmpfs, TmpfsConfig, ROOT_INO};

#[derive(Clone, Debug)]
enum Op {
    Create(Vec<u8>),
    Mkdir(Vec<u8>),
    Unlink(Vec<u8>),
    Rmdir(Vec<u8>),
    Rename(Vec<u8>, Vec<u8>),
    Link(Vec<u8>, Vec<u8>),
    Symlink(Vec<u8>, Vec<u8>),
    Write(Vec<u8>, u64, usize, u8),
    Truncate(Vec<u8>, u64),
    Retain(Vec<u8>),
    Release(usize),
    Exchange(Vec<u8>, Vec<u8>),
    Open(Vec<u8>, u32),
}

fn path() -> impl Strategy<Value = Vec<u8>> {
    // A small name space, so operations often meet existing names; dots,
    // symlink names and trailing slashes are rarer spice.
    let comp = prop_oneof![
        6 => prop::sample::select(vec!["a", "b", "c"]),
        1 => prop::sample::select(vec![".", "..", "l"]),
    ];
    let shallow = prop::bool::weighted(0.85);
    let comps = (prop::collection::vec(comp, 1..5), shallow).prop_map(|(mut cs, shallow)| {
        if shallow {
            cs.truncate(2);
        }
        cs
    });
    (comps, prop::bool::weighted(0.8), prop::bool::weighted(0.1)).prop_map(|(cs, abs, trail)| {
        let mut p = if abs { b"/".to_vec() } else { Vec::new() };
        p.extend_from_slice(cs.join("/").as_bytes());
        if trail {
            p.push(b'/');
        }
        p
    })
}

const OPEN_FLAGS: [u32; 8] = [
    lx::O_RDONLY,
    lx::O_WRONLY | lx::O_CREAT,
    lx::O_WRONLY | lx::O_CREAT | lx::O_EXCL,
    lx::O_WRONLY | lx::O_TRUNC,
    lx::O_RDONLY | lx::O_DIRECTORY,
    lx::O_RDONLY | lx::O_NOFOLLOW,
    lx::O_RDWR | lx::O_CREAT | lx::O_TRUNC,
    lx::O_PATH | lx::O_NOFOLLOW,
];

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => path().prop_map(Op::Create),
        3 => path().prop_map(Op::Mkdir),
        2 => path().prop_map(Op::Unlink),
        2 => path().prop_map(Op::Rmdir),
        3 => (path(), path()).prop_map(|(a, b)| Op::Rename(a, b)),
        1 => (path(), path()).prop_map(|(a, b)| Op::Link(a, b)),
        1 => (path(), path()).prop_map(|(a, b)| Op::Symlink(a, b)),
        2 => (path(), 0u64..64, 0usize..48, any::<u8>()).prop_map(|(p, o, n, b)| Op::Write(p, o, n, b)),
        1 => (path(), 0u64..80).prop_map(|(p, n)| Op::Truncate(p, n)),
        1 => path().prop_map(Op::Retain),
        1 => (0usize..8).prop_map(Op::Release),
        1 => (path(), path()).prop_map(|(a, b)| Op::Exchange(a, b)),
        2 => (path(), prop::sample::select(OPEN_FLAGS.to_vec())).prop_map(|(p, f)| Op::Open(p, f)),
    ]
}

struct World {
    fs: Tmpfs,
    /// Expected contents of every regular file ever created, by inode.
    model: BTreeMap<Ino, Vec<u8>>,
    held: Vec<Ino>,
    cwd: Ino,
}

impl World {
    fn apply(&mut self, op: &Op) -> KResult<()> {
        let fs = &mut self.fs;
        let cwd = self.cwd;
        match op {
            Op::Create(p) => {
                let (d, n) = fs.lookup_parent(cwd, p)?;
                let ino = fs.create(d, &n, 0o644)?;
                self.model.insert(ino, Vec::new());
            }
            Op::Mkdir(p) => {
                let (d, n) = fs.lookup_parent(cwd, p)?;
                fs.mkdir(d, &n, 0o755)?;
            }
            Op::Unlink(p) => {
                let (d, n) = fs.lookup_parent(cwd, p)?;
                fs.unlink(d, &n)?;
            }
            Op::Rmdir(p) => {
                let (d, n) = fs.lookup_parent(cwd, p)?;
                fs.rmdir(d, &n)?;
            }
            Op::Rename(a, b) => {
                let (da, na) = fs.lookup_parent(cwd, a)?;
                let (db, nb) = fs.lookup_parent(cwd, b)?;
                fs.rename(da, &na, db, &nb)?;
            }
            Op::Link(a, b) => {
                let ino = fs.lookup(cwd, a, false)?;
                let (db, nb) = fs.lookup_parent(cwd, b)?;
                fs.link(db, &nb, ino)?;
            }
            Op::Symlink(target, p) => {
                let (d, n) = fs.lookup_parent(cwd, p)?;
                fs.symlink(d, &n, target)?;
            }
            Op::Write(p, off, len, byte) => {
                let ino = fs.lookup(cwd, p, true)?;
                let data = vec![*byte; *len];
                let n = fs.write(ino, *off, &data)?;
                assert_eq!(n, *len, "unlimited fs writes everything");
                let m = self
                    .model
                    .get_mut(&ino)
                    .expect("write succeeded on a modelled file");
                let end = *off as usize + n;
                // A zero-length write does not extend the file.
                if n > 0 {
                    if m.len() < end {
                        m.resize(end, 0);
                    }
                    m[*off as usize..end].fill(*byte);
                }
            }
            Op::Truncate(p, len) => {
                let ino = fs.lookup(cwd, p, true)?;
                fs.truncate(ino, *len)?;
                self.model
                    .get_mut(&ino)
                    .expect("truncated a modelled file")
                    .resize(*len as usize, 0);
            }
            Op::Retain(p) => {
                let ino = fs.lookup(cwd, p, false)?;
                fs.retain(ino)?;
                self.held.push(ino);
            }
            Op::Exchange(a, b) => {
                let (da, na) = fs.lookup_parent(cwd, a)?;
                let (db, nb) = fs.lookup_parent(cwd, b)?;
                fs.rename2(da, &na, db, &nb, lx::RENAME_EXCHANGE)?;
            }
            Op::Open(p, flags) => {
                let o = fs.open(cwd, p, *flags, 0o644)?;
                if o.created {
                    self.model.insert(o.ino, Vec::new());
                } else if flags & lx::O_TRUNC != 0 && fs.file_type(o.ino)? == FileType::Regular {
                    self.model
                        .get_mut(&o.ino)
                        .expect("opened a modelled file")
                        .clear();
                }
            }
            Op::Release(i) => {
                if !self.held.is_empty() {
                    let ino = self.held.remove(i % self.held.len());
                    fs.release(ino)?;
                }
            }
        }
        Ok(())
    }
}

/// Everything observable without side effects: path → (stat, link target).
fn snapshot(fs: &Tmpfs) -> BTreeMap<Vec<u8>, (Stat, Option<Vec<u8>>)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![(b"/".to_vec(), ROOT_INO)];
    while let Some((p, dir)) = stack.pop() {
        let mut cookie = 2; // skip "." and ".."
        while let Some((e, next)) = fs.readdir(dir, cookie).unwrap() {
            let mut child = p.clone();
            if child.len() > 1 {
                child.push(b'/');
            }
            child.extend_from_slice(e.name);
            let link = fs.readlink(e.ino).ok();
            out.insert(child.clone(), (fs.stat(e.ino).unwrap(), link));
            if e.kind == FileType::Directory {
                stack.push((child, e.ino));
            }
            cookie = next;
        }
    }
    out.insert(b"/".to_vec(), (fs.stat(ROOT_INO).unwrap(), None));
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn random_operations_keep_the_tree_sound(ops in prop::collection::vec(op(), 1..120), cwd_in_a in any::<bool>()) {
        let mut fs = Tmpfs::new(TmpfsConfig::default(), Timespec::from_secs(1));
        let mut cwd = ROOT_INO;
        if cwd_in_a {
            cwd = fs.mkdir(ROOT_INO, b"a", 0o755).unwrap();
            fs.retain(cwd).unwrap();
        }
        let mut w = World { fs, model: BTreeMap::new(), held: Vec::new(), cwd };
        for (t, op) in ops.iter().enumerate() {
            w.fs.set_time(Timespec::from_secs(10 + t as i64));
            let before = snapshot(&w.fs);
            let usage = w.fs.usage();
            let r = w.apply(op);
            prop_assert_eq!(w.fs.fsck(), Ok(()), "after {:?} -> {:?}", op, r);
            if r.is_err() && !matches!(op, Op::Release(_)) {
                prop_assert_eq!(&before, &snapshot(&w.fs), "failed {:?} changed the tree", op);
                prop_assert_eq!(usage, w.fs.usage());
            }
        }
        // Contents match the model for every file still alive.
        let live: Vec<Ino> = w.model.keys().copied().filter(|&i| w.fs.exists(i)).collect();
        for ino in live {
            let want = w.model[&ino].clone();
            let mut got = vec![0xaa; want.len() + 8];
            let n = w.fs.read(ino, 0, &mut got).unwrap();
            prop_assert_eq!(&got[..n], &want[..]);
        }
        // path_of and lookup are inverse for every directory in the tree.
        for (p, (st, _)) in snapshot(&w.fs) {
            if FileType::from_mode(st.mode) == Some(FileType::Directory) {
                prop_assert_eq!(w.fs.path_of(st.ino).unwrap(), p.clone());
                prop_assert_eq!(w.fs.lookup(ROOT_INO, &p, false).unwrap(), st.ino);
            }
        }
        // Releasing everything leaves no unreferenced inode behind.
        for ino in std::mem::take(&mut w.held) {
            w.fs.release(ino).unwrap();
        }
        if cwd_in_a {
            w.fs.release(cwd).unwrap();
        }
        prop_assert_eq!(w.fs.fsck(), Ok(()));
    }

    #[test]
    fn lookup_never_panics(p in prop::collection::vec(prop::sample::select(vec![b'/', b'a', b'.', b'l', b'm']), 0..40)) {
        let mut fs = Tmpfs::new(TmpfsConfig::default(), Timespec::default());
        let a = fs.mkdir(ROOT_INO, b"a", 0o755).unwrap();
        fs.symlink(a, b"l", b"../a/l").unwrap();
        fs.symlink(ROOT_INO, b"m", b"a/").unwrap();
        fs.symlink(ROOT_INO, b"l", b"/m/.").unwrap();
        let _ = fs.lookup(a, &p, true);
        let _ = fs.lookup(a, &p, false);
        let _ = fs.lookup_parent(a, &p);
    }
}
