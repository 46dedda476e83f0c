use super::*;
use alloc::vec;

type Q = SockQueue<u32>;

#[test]
fn stream_merges_writes_and_reads_in_pieces() {
    let mut q = Q::new(4096, 16);
    assert_eq!(q.push_stream(b"hello ", None), 6);
    assert_eq!(q.push_stream(b"world", None), 5);
    assert_eq!(q.records(), 1);
    assert_eq!(q.len(), 11);
    let r = q.read_stream(3, true).unwrap();
    assert_eq!(r.data, b"hel");
    assert_eq!(q.len(), 11, "peek leaves the bytes");
    let r = q.read_stream(8, false).unwrap();
    assert_eq!(r.data, b"hello wo");
    let r = q.read_stream(100, false).unwrap();
    assert_eq!(r.data, b"rld");
    assert!(q.is_empty());
    assert_eq!(q.charge(), 0);
    assert!(q.read_stream(1, false).is_none());
}

#[test]
fn stream_is_bounded_by_its_limit() {
    let mut q = Q::new(8192, 16);
    let big = [7u8; 100_000];
    let n = q.push_stream(&big, None);
    assert!(n > 0 && n < 8192, "took {n}");
    assert!(q.charge() <= 8192 + JOIN_MAX, "charge {}", q.charge());
    assert_eq!(q.push_stream(&big, None), 0, "full");
    assert!(!q.stream_writable());
    let r = q.read_stream(usize::MAX, false).unwrap();
    assert_eq!(r.data.len(), n);
    assert!(q.stream_writable());
}

#[test]
fn stream_empty_write_sends_nothing() {
    let mut q = Q::new(4096, 16);
    assert_eq!(q.push_stream(b"", Some(1)), 0);
    assert!(q.is_empty());
}

#[test]
fn stream_attachment_starts_and_ends_a_read() {
    let mut q = Q::new(65536, 16);
    q.push_stream(b"aaa", None);
    q.push_stream(b"bbb", Some(1));
    q.push_stream(b"ccc", None);
    q.push_stream(b"ddd", Some(2));
    let r = q.read_stream(100, false).unwrap();
    assert_eq!((r.data.as_slice(), r.attach), (&b"aaa"[..], None));
    let r = q.read_stream(100, true).unwrap();
    assert_eq!((r.data.as_slice(), r.attach), (&b"bbb"[..], Some(1)));
    let r = q.read_stream(2, false).unwrap();
    assert_eq!((r.data.as_slice(), r.attach), (&b"bb"[..], Some(1)));
    let r = q.read_stream(100, false).unwrap();
    assert_eq!((r.data.as_slice(), r.attach), (&b"bccc"[..], None));
    let r = q.read_stream(100, false).unwrap();
    assert_eq!((r.data.as_slice(), r.attach), (&b"ddd"[..], Some(2)));
    assert_eq!(q.charge(), 0);
}

#[test]
fn records_keep_boundaries_and_truncate() {
    let mut q = Q::new(65536, 3);
    q.push_record(b"one", None, Some(b"a".to_vec())).unwrap();
    q.push_record(b"", Some(9), None).unwrap();
    q.push_record(b"three", None, None).unwrap();
    assert_eq!(q.push_record(b"four", None, None), Err(Full::NoRoom));
    let r = q.read_record(10, true).unwrap();
    assert_eq!(
        (r.data.as_slice(), r.from),
        (&b"one"[..], Some(b"a".to_vec()))
    );
    let r = q.read_record(10, false).unwrap();
    assert_eq!(r.data, b"one");
    let r = q.read_record(10, false).unwrap();
    assert_eq!((r.data.len(), r.attach), (0, Some(9)));
    let r = q.read_record(2, false).unwrap();
    assert_eq!((r.data.as_slice(), r.full_len), (&b"th"[..], 5));
    assert!(q.is_empty());
    assert_eq!((q.len(), q.charge()), (0, 0));
}

#[test]
fn records_too_big_or_over_the_limit() {
    let mut q = Q::new(2048, 100);
    assert_eq!(q.push_record(&[0; 4096], None, None), Err(Full::TooBig));
    q.push_record(&[0; 1000], None, None).unwrap();
    assert_eq!(q.push_record(&[0; 1000], None, None), Err(Full::NoRoom));
}

#[test]
fn clear_returns_attachments_and_charge() {
    let mut q = Q::new(65536, 16);
    q.push_stream(b"x", Some(1));
    q.push_stream(b"y", None);
    q.push_stream(b"z", Some(2));
    assert_eq!(q.clear(), vec![1, 2]);
    assert_eq!((q.len(), q.charge(), q.records()), (0, 0, 0));
}
