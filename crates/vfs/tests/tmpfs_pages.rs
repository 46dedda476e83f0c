//! File data in pages from a page store: contents against a byte model
//! under random writes and truncates (holes stay unallocated), capacity in
//! pages, and a store running out of memory mid-write (ENOMEM, nothing
//! leaked).

use std::sync::{Arc, Mutex};

use abi::Errno;
use proptest::prelude::*;
use vfs::{HeapPages, PageId, PageStore, Timespec, Tmpfs, TmpfsConfig, PAGE_SIZE, ROOT_INO};

/// A heap store the test can still look at after the file system took it.
#[derive(Clone)]
struct Shared(Arc<Mutex<HeapPages>>);

impl Shared {
    fn new(limit: Option<usize>) -> Shared {
        let pages = limit.map_or_else(HeapPages::default, HeapPages::with_limit);
        Shared(Arc::new(Mutex::new(pages)))
    }
    fn live(&self) -> usize {
        self.0.lock().unwrap().live()
    }
}

impl PageStore for Shared {
    fn alloc(&mut self) -> Option<PageId> {
        self.0.lock().unwrap().alloc()
    }
    fn free(&mut self, page: PageId) {
        self.0.lock().unwrap().free(page)
    }
    fn read(&self, page: PageId, offset: usize, out: &mut [u8]) {
        self.0.lock().unwrap().read(page, offset, out)
    }
    fn write(&mut self, page: PageId, offset: usize, data: &[u8]) {
        self.0.lock().unwrap().write(page, offset, data)
    }
}

fn fs_on(store: &Shared, max_bytes: u64) -> Tmpfs {
    Tmpfs::with_store(
        TmpfsConfig {
            max_bytes,
            ..Default::default()
        },
        Timespec::default(),
        Box::new(store.clone()),
    )
}

#[test]
fn store_exhaustion_is_enomem_and_partial() {
    let store = Shared::new(Some(2));
    let mut fs = fs_on(&store, u64::MAX);
    let f = fs.create(ROOT_INO, b"f", 0o644).unwrap();
    assert_eq!(
        fs.write(f, 0, &[1; 3 * PAGE_SIZE]),
        Ok(2 * PAGE_SIZE),
        "what fits is written"
    );
    assert_eq!(fs.write(f, 2 * PAGE_SIZE as u64, b"x"), Err(Errno::ENOMEM));
    assert_eq!(fs.symlink(ROOT_INO, b"l", &[b'a'; 300]), Err(Errno::ENOMEM));
    assert_eq!(fs.lookup_in(ROOT_INO, b"l"), Err(Errno::ENOENT));
    assert_eq!(fs.stat(f).unwrap().size, 2 * PAGE_SIZE as i64);
    fs.fsck().unwrap();
    fs.unlink(ROOT_INO, b"f").unwrap();
    assert_eq!(store.live(), 0, "every page went back");
    fs.symlink(ROOT_INO, b"l", &[b'a'; 300]).unwrap();
    assert_eq!(store.live(), 1);
}

#[test]
fn long_symlinks_fill_the_file_system_and_free_their_pages() {
    let store = Shared::new(None);
    let mut fs = fs_on(&store, 10 * PAGE_SIZE as u64);
    let target = [b't'; 4000];
    let mut made = 0;
    let err = loop {
        match fs.symlink(ROOT_INO, format!("l{made}").as_bytes(), &target) {
            Ok(_) => made += 1,
            Err(e) => break e,
        }
    };
    assert_eq!((err, made), (Errno::ENOSPC, 10));
    assert_eq!(store.live(), 10);
    let l = fs.lookup_in(ROOT_INO, b"l3").unwrap();
    assert_eq!(fs.readlink(l), Ok(target.to_vec()));
    // A long target is followed like a short one.
    let d = fs.mkdir(ROOT_INO, b"d", 0o755).unwrap();
    let mut abs = vec![b'/'; 3000];
    abs.extend_from_slice(b"d");
    fs.unlink(ROOT_INO, b"l0").unwrap();
    fs.symlink(ROOT_INO, b"tod", &abs).unwrap();
    assert_eq!(fs.lookup(ROOT_INO, b"/tod", true), Ok(d));
    for i in 1..made {
        fs.unlink(ROOT_INO, format!("l{i}").as_bytes()).unwrap();
    }
    fs.unlink(ROOT_INO, b"tod").unwrap();
    assert_eq!((store.live(), fs.usage().bytes_used), (0, 0));
    fs.fsck().unwrap();
}

#[test]
fn holes_take_no_pages() {
    let store = Shared::new(None);
    let mut fs = fs_on(&store, u64::MAX);
    let f = fs.create(ROOT_INO, b"f", 0o644).unwrap();
    fs.truncate(f, 1 << 40).unwrap();
    fs.write(f, 5 * PAGE_SIZE as u64 + 7, b"x").unwrap();
    fs.write(f, (1 << 40) - 1, b"y").unwrap();
    assert_eq!(store.live(), 2);
    let mut buf = vec![1u8; 3 * PAGE_SIZE];
    assert_eq!(fs.read(f, 4 * PAGE_SIZE as u64, &mut buf), Ok(buf.len()));
    assert!(buf
        .iter()
        .enumerate()
        .all(|(i, &b)| b == if i == PAGE_SIZE + 7 { b'x' } else { 0 }));
}

#[derive(Clone, Debug)]
enum Op {
    Write(u64, usize, u8),
    Truncate(u64),
}

fn op() -> impl Strategy<Value = Op> {
    // Offsets around a few pages, so writes straddle page boundaries,
    // meet holes and land in pages a truncate left partly used.
    let off = prop_oneof![0..4u64 * PAGE_SIZE as u64, Just(PAGE_SIZE as u64 - 1)];
    prop_oneof![
        3 => (off.clone(), 1..2 * PAGE_SIZE, any::<u8>()).prop_map(|(o, n, b)| Op::Write(o, n, b)),
        1 => off.prop_map(Op::Truncate),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn contents_follow_a_byte_model(ops in prop::collection::vec(op(), 1..30), pages in 1..8usize) {
        let store = Shared::new(None);
        let mut fs = fs_on(&store, (pages * PAGE_SIZE) as u64);
        let f = fs.create(ROOT_INO, b"f", 0o644).unwrap();
        let mut model: Vec<u8> = Vec::new();
        for op in &ops {
            match *op {
                Op::Write(off, n, b) => {
                    let data = vec![b; n];
                    match fs.write(f, off, &data) {
                        Ok(w) => {
                            prop_assert!(w > 0 && w <= n);
                            let end = off as usize + w;
                            if model.len() < end {
                                model.resize(end, 0);
                            }
                            model[off as usize..end].fill(b);
                        }
                        Err(e) => prop_assert_eq!(e, Errno::ENOSPC),
                    }
                }
                Op::Truncate(len) => {
                    fs.truncate(f, len).unwrap();
                    model.resize(len as usize, 0);
                }
            }
            let mut got = vec![0xeeu8; model.len() + 10];
            prop_assert_eq!(fs.read(f, 0, &mut got), Ok(model.len()));
            prop_assert_eq!(&got[..model.len()], &model[..]);
            let st = fs.stat(f).unwrap();
            prop_assert_eq!(st.blocks as usize / 8, store.live());
            prop_assert!(store.live() <= pages, "capacity holds");
            prop_assert_eq!(fs.usage().bytes_used, (store.live() * PAGE_SIZE) as u64);
            fs.fsck().map_err(TestCaseError::fail)?;
        }
        fs.unlink(ROOT_INO, b"f").unwrap();
        prop_assert_eq!(store.live(), 0);
    }
}
