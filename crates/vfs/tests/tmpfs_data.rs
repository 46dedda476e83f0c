//! File contents: read/write/truncate, holes, size and capacity limits.

mod common;

use abi::Errno;
use common::*;
use vfs::{Timespec, Tmpfs, TmpfsConfig, ROOT_INO};

#[test]
fn write_read_overwrite() {
    let mut fs = fs();
    let f = file(&mut fs, b"/f", b"hello world");
    assert_eq!(fs.write(f, 6, b"there"), Ok(5));
    assert_eq!(read_all(&mut fs, f), b"hello there");
    let mut buf = [0u8; 4];
    assert_eq!(fs.read(f, 9, &mut buf), Ok(2));
    assert_eq!(&buf[..2], b"re");
    assert_eq!(fs.read(f, 11, &mut buf), Ok(0));
    assert_eq!(fs.read(f, u64::MAX, &mut buf), Ok(0));
    assert_eq!(fs.write(f, 0, b""), Ok(0));
    let d = mkdirs(&mut fs, b"/d");
    assert_eq!(fs.read(d, 0, &mut buf), Err(Errno::EISDIR));
    assert_eq!(fs.write(d, 0, b"x"), Err(Errno::EISDIR));
    assert_eq!(fs.truncate(d, 0), Err(Errno::EISDIR));
}

#[test]
fn write_past_end_zero_fills() {
    let mut fs = fs();
    let f = file(&mut fs, b"/f", b"ab");
    assert_eq!(fs.write(f, 6, b"z"), Ok(1));
    assert_eq!(read_all(&mut fs, f), b"ab\0\0\0\0z");
    assert_eq!(fs.stat(f).unwrap().size, 7);
    assert_eq!(fs.usage().bytes_used, 4096, "capacity is charged in pages");
}

#[test]
fn truncate_grows_sparsely_and_shrinks() {
    let mut fs = fs();
    let f = file(&mut fs, b"/f", b"abcdef");
    fs.truncate(f, 1 << 40).unwrap();
    let st = fs.stat(f).unwrap();
    assert_eq!(st.size, 1 << 40);
    assert_eq!(st.blocks, 8, "one page stored, the rest is a hole");
    assert_eq!(fs.usage().bytes_used, 4096);
    let mut buf = [0xffu8; 8];
    assert_eq!(fs.read(f, 4, &mut buf), Ok(8));
    assert_eq!(&buf, b"ef\0\0\0\0\0\0");
    assert_eq!(fs.read(f, (1 << 40) - 3, &mut buf), Ok(3));
    fs.truncate(f, 3).unwrap();
    assert_eq!(read_all(&mut fs, f), b"abc");
    assert_eq!(fs.usage().bytes_used, 4096);
    fs.truncate(f, 0).unwrap();
    assert_eq!(fs.usage().bytes_used, 0, "the page goes back");
    fs.write(f, 0, b"abc").unwrap();
    // Writing in the hole left by a later truncate-up.
    fs.truncate(f, 10).unwrap();
    fs.write(f, 5, b"X").unwrap();
    assert_eq!(read_all(&mut fs, f), b"abc\0\0X\0\0\0\0");
    fs.fsck().unwrap();
}

#[test]
fn truncate_stamps_only_on_change() {
    let mut fs = fs();
    let f = file(&mut fs, b"/f", b"abc");
    fs.set_time(Timespec::from_secs(5000));
    fs.truncate(f, 3).unwrap();
    assert_eq!(fs.stat(f).unwrap().mtime, Timespec::from_secs(1000));
    fs.truncate(f, 1).unwrap();
    assert_eq!(fs.stat(f).unwrap().mtime, Timespec::from_secs(5000));
    assert_eq!(fs.stat(f).unwrap().ctime, Timespec::from_secs(5000));
}

#[test]
fn max_file_size_is_efbig() {
    let mut fs = Tmpfs::new(
        TmpfsConfig {
            max_file_size: 10,
            ..Default::default()
        },
        Timespec::default(),
    );
    let f = fs.create(ROOT_INO, b"f", 0o644).unwrap();
    assert_eq!(fs.write(f, 8, b"abcd"), Ok(2), "partial up to the limit");
    assert_eq!(fs.write(f, 10, b"x"), Err(Errno::EFBIG));
    assert_eq!(fs.write(f, u64::MAX, b"x"), Err(Errno::EFBIG));
    assert_eq!(fs.truncate(f, 11), Err(Errno::EFBIG));
    fs.truncate(f, 10).unwrap();
    assert_eq!(fs.stat(f).unwrap().size, 10);
}

#[test]
fn capacity_is_enospc() {
    const P: usize = 4096;
    let mut fs = Tmpfs::new(
        TmpfsConfig {
            // Rounded up to whole pages, as Linux's size= is: 3 pages.
            max_bytes: 2 * P as u64 + 1,
            ..Default::default()
        },
        Timespec::default(),
    );
    let f = fs.create(ROOT_INO, b"f", 0o644).unwrap();
    let g = fs.create(ROOT_INO, b"g", 0o644).unwrap();
    assert_eq!(fs.write(f, 0, &[1; P + 10]), Ok(P + 10));
    assert_eq!(
        fs.write(g, 0, &[2; 2 * P]),
        Ok(P),
        "partial write fills the rest"
    );
    assert_eq!(fs.write(g, P as u64, b"x"), Err(Errno::ENOSPC));
    assert_eq!(
        fs.write(f, 0, &[3; P + 10]),
        Ok(P + 10),
        "overwriting costs nothing"
    );
    assert_eq!(
        fs.write(f, P as u64 + 10, &[3; 100]),
        Ok(100),
        "nor does filling a page already held"
    );
    assert_eq!(
        fs.symlink(ROOT_INO, b"short", b"t").map(|_| ()),
        Ok(()),
        "a short target lives in the inode"
    );
    assert_eq!(
        fs.symlink(ROOT_INO, b"l", &[b'a'; 200]),
        Err(Errno::ENOSPC),
        "a long one takes a page"
    );
    assert_eq!(fs.write(g, 1 << 30, b"x"), Err(Errno::ENOSPC));
    let u = fs.usage();
    assert_eq!(
        (u.bytes_used, u.bytes_max),
        (3 * P as u64, 2 * P as u64 + 1)
    );
    fs.truncate(f, 0).unwrap();
    assert_eq!(fs.write(g, P as u64, &[4; 3 * P]), Ok(2 * P));
    fs.fsck().unwrap();
}

#[test]
fn sparse_write_far_past_the_end_takes_one_page() {
    let mut fs = Tmpfs::new(
        TmpfsConfig {
            max_bytes: 1 << 20,
            ..Default::default()
        },
        Timespec::default(),
    );
    let f = fs.create(ROOT_INO, b"f", 0o644).unwrap();
    assert_eq!(fs.write(f, 1 << 50, b"x"), Ok(1));
    let st = fs.stat(f).unwrap();
    assert_eq!((st.size, st.blocks), ((1 << 50) + 1, 8));
    assert_eq!(fs.usage().bytes_used, 4096);
    let mut buf = [9u8; 3];
    assert_eq!(fs.read(f, (1 << 50) - 2, &mut buf), Ok(3));
    assert_eq!(buf, [0, 0, b'x']);
    // Only up to the largest file size is written.
    assert_eq!(fs.write(f, (i64::MAX - 1) as u64, b"xyz"), Ok(1));
    assert_eq!(fs.write(f, i64::MAX as u64, b"x"), Err(Errno::EFBIG));
    assert_eq!(fs.stat(f).unwrap().size, i64::MAX);
    fs.fsck().unwrap();
}

#[test]
fn truncate_zeroes_the_tail_of_the_last_page() {
    let mut fs = fs();
    let f = file(&mut fs, b"/f", &[0xaa; 5000]);
    fs.truncate(f, 4100).unwrap();
    fs.truncate(f, 5000).unwrap();
    let data = read_all(&mut fs, f);
    assert!(data[..4100].iter().all(|&b| b == 0xaa));
    assert!(
        data[4100..].iter().all(|&b| b == 0),
        "no stale bytes reappear"
    );
    assert_eq!(fs.stat(f).unwrap().blocks, 16);
    fs.fsck().unwrap();
}

#[test]
fn write_and_read_update_times() {
    let mut fs = fs();
    let d = mkdirs(&mut fs, b"/d");
    fs.set_time(Timespec::from_secs(2000));
    let f = fs.create(d, b"f", 0o644).unwrap();
    assert_eq!(
        fs.stat(d).unwrap().mtime,
        Timespec::from_secs(2000),
        "dir changed"
    );
    fs.set_time(Timespec::from_secs(3000));
    fs.write(f, 0, b"x").unwrap();
    let st = fs.stat(f).unwrap();
    assert_eq!(
        (st.mtime.sec, st.ctime.sec, st.atime.sec),
        (3000, 3000, 2000)
    );
    fs.set_time(Timespec::from_secs(4000));
    fs.read(f, 0, &mut [0; 1]).unwrap();
    assert_eq!(fs.stat(f).unwrap().atime.sec, 4000);
}

#[test]
fn whole_pages_lists_full_pages_only() {
    let mut fs = fs();
    // Pages 0 and 2 hold data, page 1 is a hole, page 3 is cut by the end.
    let f = file(&mut fs, b"/f", b"a");
    assert_eq!(fs.write(f, 2 * 4096, &[7u8; 4096 + 100]), Ok(4096 + 100));
    let mut seen = Vec::new();
    let size = fs.whole_pages(f, 0..16, &mut |i, p| seen.push((i, p)));
    assert_eq!(size, Ok(3 * 4096 + 100));
    let indices: Vec<u64> = seen.iter().map(|&(i, _)| i).collect();
    assert_eq!(
        indices,
        [0, 2],
        "a hole and the last, partial page are left out"
    );
    // The page is the file's own: what it holds is what read returns.
    let mut buf = [0u8; 4096];
    assert_eq!(fs.read(f, 2 * 4096, &mut buf), Ok(4096));
    assert_eq!(buf, [7u8; 4096]);
    let mut only = Vec::new();
    assert_eq!(
        fs.whole_pages(f, 2..3, &mut |i, p| only.push((i, p))),
        Ok(3 * 4096 + 100)
    );
    assert_eq!(only, [seen[1]]);
    let mut none = 0;
    assert_eq!(
        fs.whole_pages(f, 3..u64::MAX, &mut |_, _| none += 1),
        Ok(3 * 4096 + 100)
    );
    assert_eq!(none, 0);
    let d = mkdirs(&mut fs, b"/d");
    assert_eq!(fs.whole_pages(d, 0..1, &mut |_, _| ()), Err(Errno::EISDIR));
}
